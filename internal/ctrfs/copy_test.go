package ctrfs

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/testutil"
	"github.com/tent-project/tent/internal/volume"
)

// TestMain lets the test binary be the copy helper (tentd copier ...).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "copier" {
		os.Exit(copier.Main(os.Args[2:]))
	}
	os.Exit(m.Run())
}

// TestCopiesStopped copies into and out of a stopped container: its file
// system is mounted for the copy and unmounted after it.
func TestCopiesStopped(t *testing.T) {
	f, fc := newFS(t)
	exe, _ := os.Executable()
	p := Copies{FS: f, Volumes: volume.New(testutil.BoltDB(t), t.TempDir(), nil), Copier: copier.Copier{Bin: exe},
		Of: func(*containers.Container) Container { return fc }}
	c := containers.New(containers.Record{ID: "x", Name: "box", Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: containers.State{Status: container.StateExited}})

	st, err := p.Stat(c, "/hello")
	if err != nil || st.Size != 2 || st.Name != "hello" {
		t.Errorf("stat: %+v %v", st, err)
	}
	if _, err := p.Stat(c, "/missing"); !errdefs.IsNotFound(err) || err.Error() != "Could not find the file /missing in container box: not found" {
		t.Errorf("stat of a missing path: %v", err)
	}
	var in bytes.Buffer
	tw := tar.NewWriter(&in)
	tw.WriteHeader(&tar.Header{Name: "added", Mode: 0o600, Size: 3, Typeflag: tar.TypeReg})
	tw.Write([]byte("new"))
	tw.Close()
	if err := p.Put(c, "/", &in, copier.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	_, rc, err := p.Get(c, "/added")
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(rc)
	h, err := tr.Next()
	body, _ := io.ReadAll(tr)
	if err != nil || h.Name != "added" || string(body) != "new" {
		t.Errorf("get: %+v %q %v", h, body, err)
	}
	if c.Mu.TryLock() { // as docker's: locked while a copy streams
		t.Error("the container was not locked during the copy")
		c.Mu.Unlock()
	}
	rc.Close()
	if !c.Mu.TryLock() {
		t.Fatal("the container stayed locked after the copy")
	}
	c.Mu.Unlock()
	if entries, _ := os.ReadDir(f.Views); len(entries) != 0 {
		t.Errorf("views left mounted: %v", entries)
	}
	c.State.Status = container.StateRemoving
	if _, err := p.Stat(c, "/hello"); !errdefs.IsConflict(err) {
		t.Errorf("stat of a container being removed: %v", err)
	}
}
