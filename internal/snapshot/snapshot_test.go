package snapshot

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tent-project/tent/internal/errdefs"
	"golang.org/x/sys/unix"
)

type file struct{ name, body string }

// layerOf builds a tar layer; a name ending in "/" is a directory.
func layerOf(t *testing.T, files ...file) *bytes.Reader {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.name[len(f.name)-1] == '/' {
			h.Typeflag, h.Mode, h.Size = tar.TypeDir, 0o755, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(f.body))
	}
	tw.Close()
	return bytes.NewReader(buf.Bytes())
}

// TestConformance runs the same behaviour checks on every implementation.
func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (mounts)")
	}
	impls := map[string]func(string) (Snapshotter, error){"native": NewNative}
	if OverlaySupported(t.TempDir()) {
		impls["overlay"] = NewOverlay
	} else {
		t.Log("overlay: not supported by this kernel or file system; only native runs")
	}
	for name, newSn := range impls {
		t.Run(name, func(t *testing.T) { conformance(t, newSn) })
	}
}

func conformance(t *testing.T, newSn func(string) (Snapshotter, error)) {
	root := t.TempDir()
	sn, err := newSn(root)
	if err != nil {
		t.Fatal(err)
	}
	defer sn.Close()

	commitLayer := func(name, parent string, l *bytes.Reader) {
		t.Helper()
		if _, err := sn.Prepare(name+"-unpack", parent); err != nil {
			t.Fatal(err)
		}
		if _, err := sn.Unpack(name+"-unpack", l); err != nil {
			t.Fatal(err)
		}
		if err := sn.Commit(name, name+"-unpack"); err != nil {
			t.Fatal(err)
		}
	}
	commitLayer("l1", "", layerOf(t, file{"a", "A"}, file{"b", "B"}, file{"d/", ""}, file{"d/x", "X"}))
	commitLayer("l2", "l1", layerOf(t, file{".wh.a", ""}, file{"c", "C"}, file{"d/", ""}, file{"d/.wh..wh..opq", ""}, file{"d/y", "Y"}))

	// A container's root: everything of l2 over l1, writable.
	ms, err := sn.Prepare("c1", "l2")
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if err := MountAll(ms, mnt); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"a": "", "b": "B", "c": "C", "d/x": "", "d/y": "Y"} {
		got, err := os.ReadFile(filepath.Join(mnt, p))
		if want == "" && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: should be hidden, got %q %v", p, got, err)
		}
		if want != "" && string(got) != want {
			t.Errorf("%s = %q %v, want %q", p, got, err, want)
		}
	}
	if err := os.WriteFile(filepath.Join(mnt, "new"), []byte("N"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Unmount(mnt); err != nil {
		t.Fatal(err)
	}
	// Usage counts what c1 holds itself: one byte more than a fresh
	// snapshot of the same parent (a native copy holds the parent's
	// files too, an overlay upper none).
	if _, err := sn.Prepare("fresh", "l2"); err != nil {
		t.Fatal(err)
	}
	used, err1 := sn.Usage("c1")
	base, err2 := sn.Usage("fresh")
	if err1 != nil || err2 != nil || used-base != 1 {
		t.Errorf("usage of c1 %d, of a fresh snapshot %d (%v %v): want 1 byte apart", used, base, err1, err2)
	}
	if _, err := sn.Usage("nope"); !errdefs.IsNotFound(err) {
		t.Errorf("usage of a missing snapshot: %v", err)
	}
	// The write went to c1 only: a view of l2 does not see it, and is read-only.
	ms, err = sn.View("v1", "l2")
	if err != nil {
		t.Fatal(err)
	}
	if err := MountAll(ms, mnt); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(mnt, "new")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("c1's write is visible in a view of its parent")
	}
	if err := os.WriteFile(filepath.Join(mnt, "x"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write into a view: %v, want EROFS", err)
	}
	if err := Unmount(mnt); err != nil {
		t.Fatal(err)
	}

	// Errors, by class.
	if _, err := sn.Prepare("c1", "l2"); !errdefs.IsAlreadyExists(err) {
		t.Errorf("duplicate key: %v", err)
	}
	if _, err := sn.Prepare("c2", "nope"); !errdefs.IsNotFound(err) {
		t.Errorf("missing parent: %v", err)
	}
	if _, err := sn.Prepare("c3", "c1"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("active parent: %v", err)
	}
	if err := sn.Commit("l3", "l2"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("commit of a committed snapshot: %v", err)
	}
	if _, err := sn.Mounts("l1"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("mounts of a committed snapshot: %v", err)
	}
	if err := sn.Remove("l1"); !errdefs.IsConflict(err) {
		t.Errorf("remove of a parent: %v", err)
	}
	if i, err := sn.Stat("l2"); err != nil || i.Parent != "l1" || i.Kind != Committed {
		t.Errorf("Stat(l2) = %+v %v", i, err)
	}

	// Removal, children first, leaves nothing.
	for _, k := range []string{"c1", "fresh", "v1", "l2", "l1"} {
		if err := sn.Remove(k); err != nil {
			t.Fatalf("remove %s: %v", k, err)
		}
	}
	sn.(*store).removals.Wait() // directories go in the background
	n := 0
	_ = sn.Walk(func(Info) error { n++; return nil })
	entries, _ := os.ReadDir(filepath.Join(root, "snapshots"))
	if n != 0 || len(entries) != 0 {
		t.Errorf("after removing all: %d records, %d directories", n, len(entries))
	}

	// A crash between making a directory and recording it: reopening sweeps it.
	if err := os.MkdirAll(filepath.Join(root, "snapshots", "999", "fs"), 0o755); err != nil {
		t.Fatal(err)
	}
	sn.Close()
	sn2, err := newSn(root)
	if err != nil {
		t.Fatal(err)
	}
	defer sn2.Close()
	if entries, _ := os.ReadDir(filepath.Join(root, "snapshots")); len(entries) != 0 {
		t.Errorf("orphan directory not swept: %v", entries)
	}
}
