package daemon

import (
	"time"

	"github.com/moby/moby/api/types/events"
)

// Subscribe returns the kept events since the given time (zero: none) and
// a channel of new ones; cancel ends the subscription.
func (d *Daemon) Subscribe(since time.Time) (past []events.Message, ch <-chan events.Message, cancel func()) {
	return d.events.Subscribe(since)
}

func (d *Daemon) event(typ events.Type, action events.Action, id string, attrs map[string]string) {
	d.events.Publish(typ, action, id, attrs)
}
