package backend

import (
	"testing"
	"time"
)

func TestPruneFilterMatches(t *testing.T) {
	now := time.Now()
	labels := map[string]string{"app": "shop", "tier": "db"}
	for _, c := range []struct {
		f    PruneFilter
		want bool
	}{
		{PruneFilter{}, true},
		{PruneFilter{Until: now.Add(time.Hour)}, true},
		{PruneFilter{Until: now.Add(-time.Hour)}, false},
		{PruneFilter{Labels: []string{"app"}}, true},
		{PruneFilter{Labels: []string{"app=shop", "tier=db"}}, true},
		{PruneFilter{Labels: []string{"app=web"}}, false},
		{PruneFilter{NotLabels: []string{"tier=db"}}, false},
		{PruneFilter{NotLabels: []string{"tier=web"}}, true},
		{PruneFilter{Labels: []string{"nosuch"}}, false},
	} {
		if got := c.f.Matches(now, labels); got != c.want {
			t.Errorf("%+v: %v, want %v", c.f, got, c.want)
		}
	}
}
