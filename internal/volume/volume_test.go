package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/testutil"
)

func newStore(t *testing.T) (*Store, *[]string) {
	dir := t.TempDir()
	var seen []string
	return New(testutil.BoltDB(t), filepath.Join(dir, "volumes"), func(a events.Action, name string) { seen = append(seen, string(a)+" "+name) }), &seen
}

func TestCreateGetRemove(t *testing.T) {
	s, seen := newStore(t)
	v, created, err := s.Create("data", map[string]string{"k": "v"}, nil)
	if err != nil || !created || v.Name != "data" || v.Anonymous() {
		t.Fatalf("create: %+v %v %v", v, created, err)
	}
	if _, err := os.Stat(s.Path("data")); err != nil {
		t.Errorf("no data directory: %v", err)
	}
	if _, created, _ := s.Create("data", nil, nil); created {
		t.Error("a second create of the same name made another volume")
	}
	anon, _, err := s.Create("", map[string]string{AnonymousLabel: ""}, nil)
	if err != nil || len(anon.Name) != 64 || !anon.Anonymous() {
		t.Errorf("anonymous volume: %+v %v", anon, err)
	}
	if list, _ := s.List(); len(list) != 2 {
		t.Errorf("list: %d volumes, want 2", len(list))
	}
	if api := s.API(v); api.Mountpoint != s.Path("data") || api.Driver != "local" || api.Labels["k"] != "v" || api.Options == nil {
		t.Errorf("API view: %+v", api)
	}
	inUse := func(string) []string { return []string{"c1", "c2"} }
	if err := s.Remove("data", inUse); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), "volume is in use - [c1, c2]") {
		t.Errorf("remove of a volume in use: %v", err)
	}
	if err := s.Remove("data", func(string) []string { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("data"); !errdefs.IsNotFound(err) {
		t.Errorf("get after remove: %v", err)
	}
	if _, err := os.Stat(filepath.Dir(s.Path("data"))); !os.IsNotExist(err) {
		t.Errorf("the volume's directory is left: %v", err)
	}
	if err := s.Remove("data", inUse); !errdefs.IsNotFound(err) {
		t.Errorf("remove of a missing volume: %v", err)
	}
	if got := strings.Join(*seen, ","); got != "create data,create "+anon.Name+",destroy data" {
		t.Errorf("events: %s", got)
	}
}

func TestBadNamesAndOptions(t *testing.T) {
	s, _ := newStore(t)
	for _, tc := range []struct {
		name string
		opts map[string]string
		want string
	}{
		{"../etc", nil, "includes invalid characters for a local volume name"},
		{"a", nil, "includes invalid characters"},
		{"ok", map[string]string{"size": "1m"}, `invalid option: "size"`},
		{"ok", map[string]string{"type": "tmpfs"}, `missing required option: "device"`},
		{"ok", map[string]string{"o": "size=1m"}, `missing required option: "device"`},
	} {
		if _, _, err := s.Create(tc.name, nil, tc.opts); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("create %q %v: %v, want %q", tc.name, tc.opts, err, tc.want)
		}
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("bad creates left %d volumes", len(list))
	}
}

func TestOptionedVolumeMountedWhileUsed(t *testing.T) {
	testutil.RequiresRoot(t)
	s, _ := newStore(t)
	if _, _, err := s.Create("scratch", nil, map[string]string{"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}); err != nil {
		t.Fatal(err)
	}
	mounted := func() bool {
		b, _ := os.ReadFile("/proc/self/mountinfo")
		return strings.Contains(string(b), " "+s.Path("scratch")+" ")
	}
	names := []string{"scratch", "missing"}
	if err := s.Acquire(names); err != nil || !mounted() {
		t.Fatalf("first user: %v, mounted %v", err, mounted())
	}
	if err := s.Acquire(names); err != nil {
		t.Fatal(err)
	}
	s.Release(names)
	if !mounted() {
		t.Error("unmounted while a user is left")
	}
	s.Release(names)
	if mounted() {
		t.Error("still mounted after the last user")
	}
}
