package eventbus

import (
	"strconv"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
)

func TestEventMatches(t *testing.T) {
	ctr := events.Message{Type: events.ContainerEventType, Action: events.ActionStart, Scope: "local",
		Actor: events.Actor{ID: "4f2c0ffee", Attributes: map[string]string{"name": "web", "image": "busybox:latest", "com.example.project": "shop", "tier": ""}}}
	img := events.Message{Type: events.ImageEventType, Action: events.ActionTag, Scope: "local",
		Actor: events.Actor{ID: "sha256:abc", Attributes: map[string]string{"name": "busybox:latest"}}}
	vol := events.Message{Type: events.VolumeEventType, Action: events.ActionCreate, Scope: "local",
		Actor: events.Actor{ID: "data", Attributes: map[string]string{"driver": "local"}}}
	for _, c := range []struct {
		f             map[string][]string
		ctr, img, vol bool
	}{
		{nil, true, true, true},
		{map[string][]string{"type": {"container"}}, true, false, false},
		{map[string][]string{"type": {"container", "volume"}}, true, false, true},
		{map[string][]string{"event": {"start"}}, true, false, false},
		{map[string][]string{"container": {"web"}}, true, false, false},
		{map[string][]string{"container": {"4f2c"}}, true, false, false},
		{map[string][]string{"container": {"db"}}, false, false, false},
		{map[string][]string{"image": {"busybox"}}, true, true, false},
		{map[string][]string{"image": {"busybox:latest"}}, true, true, false},
		{map[string][]string{"image": {"alpine"}}, false, false, false},
		{map[string][]string{"volume": {"data"}}, false, false, true},
		{map[string][]string{"network": {"bridge"}}, false, false, false},
		{map[string][]string{"label": {"com.example.project=shop"}}, true, false, false},
		{map[string][]string{"label": {"com.example.project"}}, true, false, false},
		{map[string][]string{"label": {"com.example.project=other"}}, false, false, false},
		{map[string][]string{"label": {"com.example.project=shop", "tier"}}, true, false, false},
		{map[string][]string{"label": {"com.example.project=shop", "missing"}}, false, false, false},
		{map[string][]string{"scope": {"swarm"}}, false, false, false},
	} {
		for _, m := range []struct {
			msg  events.Message
			want bool
		}{{ctr, c.ctr}, {img, c.img}, {vol, c.vol}} {
			if got := Matches(m.msg, c.f); got != m.want {
				t.Errorf("filters %v, %s event: match %v, want %v", c.f, m.msg.Type, got, m.want)
			}
		}
	}
}

func TestBusKeepsAndFansOut(t *testing.T) {
	b := New()
	b.Publish(events.ContainerEventType, events.ActionCreate, "a", nil)
	past, ch, cancel := b.Subscribe(time.Unix(0, 1))
	defer cancel()
	if len(past) != 1 || past[0].Actor.ID != "a" || past[0].Scope != "local" || past[0].TimeNano == 0 {
		t.Fatalf("kept events: %+v", past)
	}
	if none, _, c := b.Subscribe(time.Time{}); len(none) != 0 {
		t.Errorf("a subscription without since got %d past events", len(none))
	} else {
		c()
	}
	b.Publish(events.ContainerEventType, events.ActionStart, "b", nil)
	select {
	case m := <-ch:
		if m.Actor.ID != "b" || m.Action != events.ActionStart {
			t.Errorf("got %+v", m)
		}
	case <-time.After(time.Second):
		t.Fatal("no event")
	}
	for i := 0; i < Keep+10; i++ {
		b.Publish(events.ImageEventType, events.ActionTag, strconv.Itoa(i), nil)
	}
	past, _, c := b.Subscribe(time.Unix(0, 1))
	c()
	if len(past) != Keep {
		t.Fatalf("kept %d events, want %d", len(past), Keep)
	}
	// The newest Keep, oldest first.
	for i, m := range past {
		if want := strconv.Itoa(i + 10); m.Actor.ID != want {
			t.Fatalf("kept event %d is %q, want %q", i, m.Actor.ID, want)
		}
	}
}

func TestEventMatchesActionWithDetail(t *testing.T) {
	m := events.Message{Type: events.ContainerEventType, Action: "health_status: healthy", Actor: events.Actor{ID: "4f2c"}}
	for f, want := range map[string]bool{"health_status": true, "health_status: healthy": true, "health": false, "start": false} {
		if got := Matches(m, map[string][]string{"event": {f}}); got != want {
			t.Errorf("event=%s: %v, want %v", f, got, want)
		}
	}
}
