package server

import (
	"testing"

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
			if got := eventMatches(m.msg, c.f); got != m.want {
				t.Errorf("filters %v, %s event: match %v, want %v", c.f, m.msg.Type, got, m.want)
			}
		}
	}
}
