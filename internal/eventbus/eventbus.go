// Package eventbus is the engine's event stream (GET /events): a Bus
// fans each event out to its subscribers and keeps the recent ones for
// `events --since`; Matches applies docker's event filters.
package eventbus

import (
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
)

// Keep is how many recent events a Bus keeps.
const Keep = 1024

// Bus is an event stream. The zero value is not usable: use New.
type Bus struct {
	mu sync.Mutex
	// recent is a ring of the last Keep events: the oldest at next once
	// it is full. A ring, not a slice trimmed from the front: trimming
	// copied all Keep events on every publish once there were that many
	// (~1 ms of the daemon's CPU per `run --rm`, five to seven events).
	recent []events.Message
	next   int
	subs   map[chan events.Message]struct{}
}

func New() *Bus { return &Bus{subs: map[chan events.Message]struct{}{}} }

// Publish sends an event of typ about the object id, stamped now.
func (b *Bus) Publish(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{
		Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano(),
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.recent) < Keep {
		b.recent = append(b.recent, m)
	} else {
		b.recent[b.next] = m
		b.next = (b.next + 1) % Keep
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
func (b *Bus) Subscribe(since time.Time) (past []events.Message, ch <-chan events.Message, cancel func()) {
	c := make(chan events.Message, 256)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !since.IsZero() {
		for _, part := range [][]events.Message{b.recent[b.next:], b.recent[:b.next]} {
			for _, m := range part {
				if m.TimeNano >= since.UnixNano() {
					past = append(past, m)
				}
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

// Matches applies docker's event filters: every key given must match.
// type, event and scope exactly; container, volume (and network, daemon,
// plugin, ...) by ID or name prefix, which keeps out events of other
// kinds, as dockerd does; image by ID or name, with or without the tag,
// also for the image a container event names; label=KEY or
// label=KEY=VALUE against the attributes (a container's labels are there).
func Matches(m events.Message, f map[string][]string) bool {
	exact := func(key, v string) bool {
		vals, ok := f[key]
		return !ok || slices.Contains(vals, v)
	}
	prefix := func(key, v string) bool {
		vals, ok := f[key]
		return !ok || slices.ContainsFunc(vals, func(x string) bool { return strings.HasPrefix(v, x) })
	}
	attrs := m.Actor.Attributes
	for _, kind := range []string{"container", "volume", "network", "daemon", "plugin", "node", "service", "secret", "config"} {
		if !prefix(kind, m.Actor.ID) && !prefix(kind, attrs["name"]) {
			return false
		}
	}
	image := attrs["image"]
	if m.Type == events.ImageEventType {
		image = attrs["name"]
	}
	if !slices.ContainsFunc([]string{m.Actor.ID, image, stripTag(m.Actor.ID), stripTag(image)}, func(v string) bool { return exact("image", v) }) {
		return false
	}
	for _, l := range f["label"] {
		k, v, withValue := strings.Cut(l, "=")
		if got, ok := attrs[k]; !ok || withValue && got != v {
			return false
		}
	}
	// An action with a detail ("health_status: healthy", "exec_start: sh")
	// matches its bare name too, as dockerd's filter does.
	action, _, _ := strings.Cut(string(m.Action), ":")
	return exact("type", string(m.Type)) && (exact("event", string(m.Action)) || exact("event", action)) && exact("scope", m.Scope)
}

// stripTag drops the tag of an image name (not a registry's port).
func stripTag(name string) string {
	if i := strings.LastIndexByte(name, ':'); i > strings.LastIndexByte(name, '/') {
		return name[:i]
	}
	return name
}
