package checkpoints

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/tent-project/tent/internal/errdefs"
)

func TestCreateListDelete(t *testing.T) {
	s := Store{Root: filepath.Join(t.TempDir(), "checkpoints"), Container: "c1"}
	eps := map[string]Endpoint{"net1": {IP: netip.MustParseAddr("10.0.0.5"), MAC: "02:42:0a:00:00:05"}}
	save := func(dir string) error { return os.WriteFile(filepath.Join(dir, "state"), []byte("s"), 0o600) }
	for _, name := range []string{"b1", "a1"} {
		if err := s.Create(name, eps, save); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Create("a1", eps, save); !errdefs.IsAlreadyExists(err) {
		t.Errorf("a second a1: %v", err)
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].Name != "a1" || list[1].Name != "b1" {
		t.Errorf("list: %+v %v", list, err)
	}
	dir, err := s.Dir("a1")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "state")); string(b) != "s" {
		t.Errorf("the saved state: %q", b)
	}
	got, err := Endpoints(dir)
	if err != nil || got["net1"] != eps["net1"] {
		t.Errorf("endpoints: %+v %v", got, err)
	}
	if err := s.Delete("a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Dir("a1"); !errdefs.IsNotFound(err) {
		t.Errorf("a deleted checkpoint: %v", err)
	}
}

// A failed save leaves no checkpoint, not even a half-made one.
func TestFailedSaveLeavesNothing(t *testing.T) {
	s := Store{Root: t.TempDir(), Container: "c1"}
	boom := errors.New("boom")
	if err := s.Create("x1", nil, func(string) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("create: %v", err)
	}
	if ents, _ := os.ReadDir(s.Root); len(ents) != 0 {
		t.Errorf("left behind: %v", ents)
	}
	if list, _ := s.List(); len(list) != 0 {
		t.Errorf("listed: %+v", list)
	}
}

func TestNames(t *testing.T) {
	for name, ok := range map[string]bool{"ok-1.a_b": true, "-x": false, "a": false, "a/b": false, "": false} {
		if err := CheckName(name); (err == nil) != ok {
			t.Errorf("%q: %v", name, err)
		}
	}
	if ep, err := Endpoints(""); err != nil || ep != nil {
		t.Errorf("no checkpoint: %v %v", ep, err)
	}
}
