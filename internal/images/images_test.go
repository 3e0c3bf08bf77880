package images

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/content"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/snapshot"
	bolt "go.etcd.io/bbolt"
)

func newStore(t *testing.T) (*Store, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (unpacking keeps owners)")
	}
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cs, err := content.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	sn, err := snapshot.NewNative(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	s, err := New(db, cs, sn)
	if err != nil {
		t.Fatal(err)
	}
	return s, root
}

func rootfsTar(t *testing.T, body string) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755})
	tw.WriteHeader(&tar.Header{Name: "bin/hello", Typeflag: tar.TypeReg, Mode: 0o755, Size: int64(len(body))})
	tw.Write([]byte(body))
	tw.Close()
	return buf.Bytes()
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"busybox":                    "docker.io/library/busybox:latest",
		"busybox:1.36":               "docker.io/library/busybox:1.36",
		"me/app":                     "docker.io/me/app:latest",
		"localhost:5000/x/y:v1":      "localhost:5000/x/y:v1",
		"registry.example.org/a/b:c": "registry.example.org/a/b:c",
	} {
		if got, err := Normalize(in); err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"UPPER", "a b", "", "x:"} {
		if _, err := Normalize(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("Normalize(%q): %v", bad, err)
		}
	}
	if FamiliarName("docker.io/library/busybox:latest") != "busybox:latest" {
		t.Error("FamiliarName")
	}
}

func TestImportGetTagDelete(t *testing.T) {
	s, root := newStore(t)
	img, err := s.Import(bytes.NewReader(rootfsTar(t, "hi")), "busybox", ocispec.ImageConfig{Cmd: []string{"sh"}}, "Imported from -", ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"busybox", "busybox:latest", "docker.io/library/busybox", img.ID.String(), img.ID.Encoded()[:12]} {
		got, err := s.Get(name)
		if err != nil || got.ID != img.ID {
			t.Errorf("Get(%q) = %v, %v", name, got, err)
		}
	}
	if _, err := s.Get("nothere"); !errdefs.IsNotFound(err) {
		t.Errorf("Get of a missing image: %v", err)
	}
	conf, err := s.Config(img.ID)
	if err != nil || conf.Config.Cmd[0] != "sh" || len(conf.RootFS.DiffIDs) != 1 {
		t.Fatalf("config %+v %v", conf, err)
	}
	key, err := s.RootFS(img)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := s.snap.View("check", key)
	if err != nil {
		t.Fatal(err)
	}
	mnt := t.TempDir()
	if err := snapshot.MountAll(ms, mnt); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(mnt, "bin/hello"))
	snapshot.Unmount(mnt)
	s.snap.Remove("check")
	if string(b) != "hi" {
		t.Errorf("unpacked file: %q", b)
	}
	// A second name; the same content imported again shares the layer.
	if err := s.Tag(img.ID, "mine:v1"); err != nil {
		t.Fatal(err)
	}
	img2, err := s.Import(bytes.NewReader(rootfsTar(t, "hi")), "other", ocispec.ImageConfig{}, "", ocispec.Platform{})
	if err != nil {
		t.Fatal(err)
	}
	if img2.Layers[0] != img.Layers[0] {
		t.Error("identical layers stored twice")
	}
	if _, err := s.Untag("mine:v1"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(img.ID.String()); len(got.Names) != 1 {
		t.Errorf("names after untag: %v", got.Names)
	}
	// Deleting one image keeps the shared layer; deleting both frees it.
	if err := s.Delete(img.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RootFS(img2); err != nil {
		t.Errorf("shared layer gone with the first image: %v", err)
	}
	if err := s.Delete(img2.ID); err != nil {
		t.Fatal(err)
	}
	n := 0
	s.snap.Walk(func(snapshot.Info) error { n++; return nil })
	blobs, _ := os.ReadDir(filepath.Join(root, "content", "blobs", "sha256"))
	if n != 0 || len(blobs) != 0 {
		t.Errorf("after deleting every image: %d snapshots, %d blobs", n, len(blobs))
	}
}

func TestImportTruncatedLeavesNothing(t *testing.T) {
	s, root := newStore(t)
	data := rootfsTar(t, string(bytes.Repeat([]byte("x"), 5000)))
	if _, err := s.Import(bytes.NewReader(data[:1000]), "broken", ocispec.ImageConfig{}, "", ocispec.Platform{}); err == nil {
		t.Fatal("a truncated tarball imported")
	}
	if imgs, _ := s.List(); len(imgs) != 0 {
		t.Errorf("images after a failed import: %d", len(imgs))
	}
	n := 0
	s.snap.Walk(func(snapshot.Info) error { n++; return nil })
	blobs, _ := os.ReadDir(filepath.Join(root, "content", "blobs", "sha256"))
	if n != 0 || len(blobs) != 0 {
		t.Errorf("a failed import left %d snapshots and %d blobs", n, len(blobs))
	}
}
