package archive

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
)

func TestExtractUnder(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dst"), 0o755)
	data := layer(t, entry{name: "./", typ: tar.TypeDir, mode: 0o700}, entry{name: "a/", typ: tar.TypeDir},
		entry{name: "a/f", body: "f"}, entry{name: ".wh.kept", body: "w"}, entry{name: "a/up", typ: tar.TypeSymlink, link: "../a/f"},
		entry{name: "hl", typ: tar.TypeLink, link: "a/f"})
	if err := Extract(root, bytes.NewReader(data), ExtractOptions{Under: "dst", Owner: &[2]int{7, 8}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dst/a/f")); string(b) != "f" {
		t.Errorf("dst/a/f = %q", b)
	}
	if _, err := os.Stat(filepath.Join(root, "dst/.wh.kept")); err != nil {
		t.Errorf("a .wh. entry is a plain file in an extraction: %v", err)
	}
	var st1, st2 os.FileInfo
	st1, _ = os.Stat(filepath.Join(root, "dst/a/f"))
	st2, _ = os.Stat(filepath.Join(root, "dst/hl"))
	if st1 == nil || st2 == nil || !os.SameFile(st1, st2) {
		t.Error("the hard link's target was not taken under the extraction directory")
	}
	if l, err := os.Readlink(filepath.Join(root, "dst/a/up")); l != "../a/f" {
		t.Errorf("a symlink inside the directory: %q %v", l, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "dst")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("the directory extracted into took the archive's \".\" entry: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "dst/a/f")); err != nil {
		t.Fatal(err)
	} else if st := fi.Sys().(*syscall.Stat_t); st.Uid != 7 || st.Gid != 8 {
		t.Errorf("owner %d:%d, want the option's 7:8", st.Uid, st.Gid)
	}
}

func TestExtractRefusals(t *testing.T) {
	for name, c := range map[string]struct {
		entries []entry
		opts    ExtractOptions
		want    error
	}{
		"dot-dot name":      {[]entry{{name: "../escape", body: "x"}}, ExtractOptions{Under: "dst"}, ErrBreakout},
		"dot-dot hard link": {[]entry{{name: "l", typ: tar.TypeLink, link: "../outside"}}, ExtractOptions{Under: "dst"}, ErrBreakout},
		"climbing symlink":  {[]entry{{name: "s", typ: tar.TypeSymlink, link: "../../etc"}}, ExtractOptions{Under: "dst"}, ErrBreakout},
		"file over dir":     {[]entry{{name: "sub", body: "x"}}, ExtractOptions{Under: "dst", NoOverwriteDirNonDir: true}, ErrDirNonDir},
		"dir over file":     {[]entry{{name: "file/", typ: tar.TypeDir}}, ExtractOptions{Under: "dst", NoOverwriteDirNonDir: true}, ErrDirNonDir},
	} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "dst/sub"), 0o755)
			os.WriteFile(filepath.Join(root, "dst/file"), nil, 0o644)
			os.WriteFile(filepath.Join(root, "outside"), nil, 0o644)
			err := Extract(root, bytes.NewReader(layer(t, c.entries...)), c.opts)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if _, err := os.Lstat(filepath.Join(root, "escape")); err == nil {
				t.Error("an entry landed outside the extraction directory")
			}
		})
	}
	// Without NoOverwriteDirNonDir a file replaces a directory.
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dst/sub"), 0o755)
	if err := Extract(root, bytes.NewReader(layer(t, entry{name: "sub", body: "x"})), ExtractOptions{Under: "dst"}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "dst/sub")); string(b) != "x" {
		t.Errorf("dst/sub = %q", b)
	}
}

func TestWriteTreeNames(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "d/sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "d/sub/f"), []byte("f"), 0o644)
	os.Link(filepath.Join(dir, "d/sub/f"), filepath.Join(dir, "d/hl"))
	os.Symlink("/nowhere", filepath.Join(dir, "d/s"))
	for top, want := range map[string][]string{
		"d": {"d/", "d/hl", "d/s", "d/sub/", "d/sub/f"},
		".": {"./", "./hl", "./s", "./sub/"}, // sub pruned
	} {
		var buf bytes.Buffer
		if err := WriteTree(&buf, filepath.Join(dir, "d"), top, map[string]bool{"sub": top == "."}); err != nil {
			t.Fatal(err)
		}
		var names []string
		tr := tar.NewReader(&buf)
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			names = append(names, h.Name)
			if h.Name == top+"/sub/f" && h.Typeflag != tar.TypeLink {
				if h.Typeflag != tar.TypeReg {
					t.Errorf("%s: type %c", h.Name, h.Typeflag)
				}
			}
			if h.Typeflag == tar.TypeLink && h.Linkname != top+"/hl" && h.Linkname != top+"/sub/f" {
				t.Errorf("hard link %s -> %s, not a name of the tree", h.Name, h.Linkname)
			}
		}
		if !slices.Equal(names, want) {
			t.Errorf("top %q: %q, want %q", top, names, want)
		}
	}
	var buf bytes.Buffer
	if err := WriteTree(&buf, filepath.Join(dir, "d/sub/f"), "f", nil); err != nil {
		t.Fatal(err)
	}
	h, err := tar.NewReader(&buf).Next()
	if err != nil || h.Name != "f" || h.Size != 1 || h.Mode != 0o100644 {
		t.Errorf("a file's tar: %v %+v", err, h)
	}
}

// Rename gives the archive's top entry, and what is below it, another
// name (hard links too); other names stay.
func TestExtractRename(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "dst"), 0o755)
	data := layer(t, entry{name: "src/", typ: tar.TypeDir}, entry{name: "src/f", body: "f"},
		entry{name: "src/hl", typ: tar.TypeLink, link: "src/f"}, entry{name: "srcx", body: "x"})
	if err := Extract(root, bytes.NewReader(data), ExtractOptions{Under: "dst", Rename: [2]string{"src", "new"}}); err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"dst/new/f": "f", "dst/new/hl": "f", "dst/srcx": "x"} {
		if b, err := os.ReadFile(filepath.Join(root, path)); string(b) != want {
			t.Errorf("%s: %q %v, want %q", path, b, err, want)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "dst/src")); err == nil {
		t.Error("the old name was extracted too")
	}
}

// An entry that turns a directory into a symlink sends what comes after
// it under that name where the link points (inside the root), though
// the directory was resolved for the entries before it; large files
// arrive whole.
func TestExtractResolvesAgainAfterAChange(t *testing.T) {
	root := t.TempDir()
	big := string(bytes.Repeat([]byte("0123456789abcdef"), 200_000)) // 3.2 MB: several buffers
	data := layer(t, entry{name: "e/", typ: tar.TypeDir}, entry{name: "d/", typ: tar.TypeDir}, entry{name: "d/f1", body: big},
		entry{name: "d", typ: tar.TypeSymlink, link: "e"}, entry{name: "d/f2", body: "2"}, entry{name: "e/big", body: big})
	if err := Extract(root, bytes.NewReader(data), ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "e/f2")); string(b) != "2" {
		t.Errorf("e/f2 = %q: d/f2 did not follow the new link d -> e", b)
	}
	if l, err := os.Readlink(filepath.Join(root, "d")); err != nil || l != "e" {
		t.Errorf("d: %q %v", l, err)
	}
	if _, err := os.Stat(filepath.Join(root, "e/f1")); err == nil {
		t.Error("d/f1, written before the link, is under e")
	}
	if b, _ := os.ReadFile(filepath.Join(root, "e/big")); string(b) != big {
		t.Errorf("a 3.2 MB file arrived with %d bytes", len(b))
	}
}
