package archive

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// listTar returns a tar's entries by name: type, mode, owner, link, body.
func listTar(t *testing.T, b []byte) map[string]tar.Header {
	t.Helper()
	out := map[string]tar.Header{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[h.Name] = *h
	}
}

// TestWriteDiff turns an overlay upper directory into a layer: whiteouts
// and opaque directories become their markers, hard links stay links,
// skipped mount points are left out (and removed), and applying the
// layer gives the tree back.
func TestWriteDiff(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (character devices, trusted xattrs)")
	}
	upper := t.TempDir()
	os.MkdirAll(filepath.Join(upper, "etc"), 0o755)
	os.WriteFile(filepath.Join(upper, "etc", "conf"), []byte("conf\n"), 0o640)
	os.Link(filepath.Join(upper, "etc", "conf"), filepath.Join(upper, "etc", "again"))
	os.Symlink("conf", filepath.Join(upper, "etc", "link"))
	os.Chown(filepath.Join(upper, "etc", "conf"), 12, 34)
	if err := unix.Mknod(filepath.Join(upper, "etc", "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(upper, "opaque"), 0o700)
	if err := unix.Setxattr(filepath.Join(upper, "opaque"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
		t.Skipf("no trusted xattrs here: %v", err)
	}
	os.WriteFile(filepath.Join(upper, "opaque", "new"), []byte("n"), 0o644)
	os.MkdirAll(filepath.Join(upper, "run", "secrets"), 0o755)
	os.WriteFile(filepath.Join(upper, "run", "secrets", "token"), nil, 0o644)

	var buf bytes.Buffer
	skip := map[string]bool{"run": true, "run/secrets": true, "run/secrets/token": true}
	id, err := WriteDiff(&buf, upper, skip)
	if err != nil {
		t.Fatal(err)
	}
	if want := digest.FromBytes(buf.Bytes()); id != want {
		t.Errorf("diffID %s, want the digest of what was written %s", id, want)
	}
	entries := listTar(t, buf.Bytes())
	// Entries go in lexical order: "again" first, and "conf" links to it.
	for name, want := range map[string]byte{"etc/": tar.TypeDir, "etc/again": tar.TypeReg, "etc/conf": tar.TypeLink,
		"etc/link": tar.TypeSymlink, "etc/.wh.gone": tar.TypeReg, "opaque/": tar.TypeDir, "opaque/.wh..wh..opq": tar.TypeReg, "opaque/new": tar.TypeReg} {
		if h, ok := entries[name]; !ok || h.Typeflag != want {
			t.Errorf("%s: %+v, want type %c", name, h, want)
		}
	}
	if h := entries["etc/again"]; h.Uid != 12 || h.Gid != 34 || h.Mode != 0o640 {
		t.Errorf("etc/again: owner %d:%d mode %o", h.Uid, h.Gid, h.Mode)
	}
	if h := entries["etc/conf"]; h.Linkname != "etc/again" {
		t.Errorf("hard link to %q", h.Linkname)
	}
	for name := range entries {
		if name == "run/" || name == "run/secrets/" || name == "run/secrets/token" {
			t.Errorf("skipped mount point %s is in the layer", name)
		}
	}
	if _, err := os.Stat(filepath.Join(upper, "run")); err != nil {
		t.Errorf("WriteDiff changed the upper directory: %v", err)
	}
	if err := RemoveLeftOut(upper, skip); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(upper, "run")); err == nil {
		t.Errorf("RemoveLeftOut left the skipped mount points")
	}
	// A second pass over the same directory gives the same layer.
	var again bytes.Buffer
	if id2, _ := WriteDiff(&again, upper, nil); id2 != id {
		t.Errorf("the same directory gave another layer")
	}
	// Applied over a lower tree, the layer deletes and hides as overlay would.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "opaque"), 0o755)
	os.WriteFile(filepath.Join(root, "opaque", "old"), nil, 0o644)
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc", "gone"), nil, 0o644)
	res, err := Apply(root, bytes.NewReader(buf.Bytes()), Delete)
	if err != nil {
		t.Fatal(err)
	}
	if res.DiffID != id {
		t.Errorf("applied diffID %s, written %s", res.DiffID, id)
	}
	for p, exists := range map[string]bool{"etc/gone": false, "opaque/old": false, "opaque/new": true, "etc/again": true} {
		if _, err := os.Lstat(filepath.Join(root, p)); (err == nil) != exists {
			t.Errorf("%s: exists %v, want %v", p, err == nil, exists)
		}
	}
	sum := func(p string) [32]byte { b, _ := os.ReadFile(p); return sha256.Sum256(b) }
	if sum(filepath.Join(root, "etc", "again")) != sum(filepath.Join(upper, "etc", "conf")) {
		t.Errorf("hard link content differs")
	}
}
