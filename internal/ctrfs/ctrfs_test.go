package ctrfs

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/imagestest"
	"github.com/tent-project/tent/internal/task/vmtask"
	"github.com/tent-project/tent/internal/testutil"
)

// newFS is an FS over the overlay snapshotter (what changes are read
// from), with an image of one file (hello) and a container's snapshot on
// it.
func newFS(t *testing.T) (*FS, Container) {
	t.Helper()
	testutil.RequiresRoot(t) // snapshots are mounted
	stores := imagestest.New(t, imagestest.Overlay)
	st, sn := stores.Images, stores.Snap

	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	tw.WriteHeader(&tar.Header{Name: "hello", Mode: 0o644, Size: 2, Typeflag: tar.TypeReg, ModTime: time.Unix(1, 0)})
	tw.Write([]byte("hi"))
	tw.Close()
	img, err := st.Import(&b, "img:1", ocispec.ImageConfig{}, "", ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	conf, err := st.Config(img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sn.Prepare("container-x", images.ChainKey(conf.RootFS.DiffIDs)); err != nil {
		t.Fatal(err)
	}
	return &FS{Snap: sn, Images: st, Views: filepath.Join(t.TempDir(), "views")}, Container{Key: "container-x", Image: img.ID}
}

// What a container changed is listed, exported and made a layer of.
func TestChangesExportLayer(t *testing.T) {
	f, c := newFS(t)
	dir, release, err := f.MountRoot(c, false)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "new"), []byte("n"), 0o644)
	os.Remove(filepath.Join(dir, "hello"))
	release()
	if _, err := os.Stat(dir); err == nil {
		t.Error("the mount point stayed")
	}

	list, err := f.Changes(c)
	if err != nil {
		t.Fatal(err)
	}
	got := []string{}
	for _, ch := range list {
		got = append(got, string("CAD"[ch.Kind])+" "+ch.Path)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"A /new", "D /hello"}) {
		t.Errorf("changes: %v", got)
	}

	var exp bytes.Buffer
	if err := f.Export(c, &exp); err != nil {
		t.Fatal(err)
	}
	names := []string{}
	tr := tar.NewReader(&exp)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
	}
	if !slices.Contains(names, "new") || slices.Contains(names, "hello") {
		t.Errorf("export: %v", names)
	}

	conf, _ := f.Images.Config(c.Image)
	diffID, err := f.Layer(c, conf.RootFS.DiffIDs)
	if err != nil || diffID == "" || diffID == conf.RootFS.DiffIDs[0] {
		t.Errorf("layer: %q %v", diffID, err)
	}
	if entries, _ := os.ReadDir(f.Views); len(entries) != 0 {
		t.Errorf("views left behind: %v", entries)
	}
}

// A VM container's files are read only while it is stopped.
func TestRunningVMRefused(t *testing.T) {
	f := &FS{Views: t.TempDir()}
	c := Container{VM: &vmtask.Runtime{}, Running: true}
	if _, err := f.Changes(c); !errdefs.IsConflict(err) {
		t.Errorf("diff of a running VM: %v", err)
	}
	if _, err := f.Layer(c, nil); !errdefs.IsConflict(err) {
		t.Errorf("commit of a running VM: %v", err)
	}
}

// The engine's mount points that the image lacks are left out of what
// the container changed; those it has are its own.
func TestEngineSkip(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	skip := engineSkip(root)
	if skip["etc"] || !skip["etc/hosts"] {
		t.Errorf("skip %v: want etc/hosts (made by the engine), not etc (the image's)", skip)
	}
}
