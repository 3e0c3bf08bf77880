package daemon

import (
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// broker fans events out to subscribers and keeps the recent ones for
// `events --since`.
type broker struct {
	mu     sync.Mutex
	recent []events.Message
	subs   map[chan events.Message]struct{}
}

const keepEvents = 1024

func newBroker() *broker { return &broker{subs: map[chan events.Message]struct{}{}} }

func (b *broker) publish(m events.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.recent = append(b.recent, m)
	if len(b.recent) > keepEvents {
		b.recent = append([]events.Message(nil), b.recent[len(b.recent)-keepEvents:]...)
	}
	for ch := range b.subs {
		select {
		case ch <- m:
		default: // a subscriber that does not keep up loses events
		}
	}
}

// Subscribe returns the kept events since the given time (zero: none) and
// a channel of new ones; cancel ends the subscription.
func (d *Daemon) Subscribe(since time.Time) (past []events.Message, ch <-chan events.Message, cancel func()) {
	b := d.events
	c := make(chan events.Message, 256)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !since.IsZero() {
		for _, m := range b.recent {
			if m.TimeNano >= since.UnixNano() {
				past = append(past, m)
			}
		}
	}
	b.subs[c] = struct{}{}
	return past, c, func() {
		b.mu.Lock()
		delete(b.subs, c)
		b.mu.Unlock()
	}
}

func (d *Daemon) event(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	d.events.publish(events.Message{
		Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
	})
}
