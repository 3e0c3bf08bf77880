package volume

import (
	"strings"
	"testing"

	"github.com/moby/moby/api/types/volume"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
)

// TestEndpoints: the volume endpoints' filters, removal of a volume in
// use, prune (anonymous volumes, or all unused with everything).
func TestEndpoints(t *testing.T) {
	s, _ := newStore(t)
	used := map[string][]string{}
	e := Endpoints{Store: s, Users: func(name string) []string { return used[name] }}
	if _, err := e.VolumeCreate(volume.CreateRequest{Name: "x1", Driver: "nfs"}); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), `plugin "nfs" not found`) {
		t.Errorf("another driver: %v", err)
	}
	for _, n := range []string{"web-data", "db-data"} {
		if _, err := e.VolumeCreate(volume.CreateRequest{Name: n, Labels: map[string]string{"app": strings.TrimSuffix(n, "-data")}}); err != nil {
			t.Fatal(err)
		}
	}
	anon, _, err := s.Create("", map[string]string{AnonymousLabel: ""}, nil)
	if err != nil {
		t.Fatal(err)
	}
	used["db-data"] = []string{"c1"}
	names := func(f map[string][]string) string {
		l, err := e.VolumeList(f)
		if err != nil {
			return err.Error()
		}
		var out []string
		for _, v := range l.Volumes {
			out = append(out, v.Name)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		f    map[string][]string
		want string
	}{
		{map[string][]string{"name": {"web"}}, "web-data"},
		{map[string][]string{"label": {"app=db"}}, "db-data"},
		{map[string][]string{"dangling": {"false"}}, "db-data"},
		{map[string][]string{"driver": {"nfs"}}, ""},
	} {
		if got := names(tc.f); got != tc.want {
			t.Errorf("list %v: %q, want %q", tc.f, got, tc.want)
		}
	}
	if got := names(map[string][]string{"bogus": {"1"}}); !strings.Contains(got, "invalid filter 'bogus'") {
		t.Errorf("an unknown filter: %q", got)
	}
	if err := e.VolumeRemove("db-data", false); !errdefs.IsConflict(err) {
		t.Errorf("remove of a volume in use: %v", err)
	}
	if err := e.VolumeRemove("nosuch", true); err != nil {
		t.Errorf("forced remove of a missing volume: %v", err)
	}
	r, err := e.VolumePrune(false, backend.PruneFilter{})
	if err != nil || len(r.VolumesDeleted) != 1 || r.VolumesDeleted[0] != anon.Name {
		t.Errorf("prune (anonymous only): %+v %v", r, err)
	}
	r, err = e.VolumePrune(true, backend.PruneFilter{})
	if err != nil || len(r.VolumesDeleted) != 1 || r.VolumesDeleted[0] != "web-data" {
		t.Errorf("prune all unused: %+v %v", r, err)
	}
}
