package archive

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

type entry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid              int
	xattrs           map[string]string
}

func layer(t *testing.T, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Uid: e.uid, ModTime: mtime, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if len(e.xattrs) > 0 {
			h.PAXRecords = map[string]string{}
			for k, v := range e.xattrs {
				h.PAXRecords["SCHILY.xattr."+k] = v
			}
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := tw.Write([]byte(e.body)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func requireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (ownership, device nodes)")
	}
}

func read(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestApplyBasicAndDiffID(t *testing.T) {
	requireRoot(t)
	dir := t.TempDir()
	data := layer(t,
		entry{name: "etc/", typ: tar.TypeDir},
		entry{name: "etc/hello", body: "world", mode: 0o4755, uid: 1234, xattrs: map[string]string{"user.test": "v"}},
		entry{name: "etc/link", typ: tar.TypeSymlink, link: "hello"},
		entry{name: "etc/hard", typ: tar.TypeLink, link: "etc/hello"},
		entry{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		entry{name: "fifo", typ: tar.TypeFifo},
	)
	res, err := Apply(dir, bytes.NewReader(data), Delete)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if res.DiffID != digest.NewDigestFromBytes(digest.SHA256, sum[:]) || res.Size != int64(len(data)) {
		t.Errorf("result %+v, want digest of the plain tar and its size %d", res, len(data))
	}
	if read(t, filepath.Join(dir, "etc/hello")) != "world" || read(t, filepath.Join(dir, "etc/link")) != "world" {
		t.Error("file or symlink content wrong")
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, "etc/hello"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Uid != 1234 || st.Mode&0o7777 != 0o4755 || st.Nlink != 2 {
		t.Errorf("owner %d mode %o links %d; want 1234, 4755, 2", st.Uid, st.Mode&0o7777, st.Nlink)
	}
	if st.Mtim.Sec != time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Unix() {
		t.Errorf("mtime %d", st.Mtim.Sec)
	}
	buf := make([]byte, 8)
	if n, err := unix.Getxattr(filepath.Join(dir, "etc/hello"), "user.test", buf); err == nil && string(buf[:n]) != "v" {
		t.Errorf("xattr %q", buf[:n])
	}
	if err := unix.Stat(filepath.Join(dir, "etc"), &st); err != nil || st.Mtim.Sec != time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC).Unix() {
		t.Errorf("directory mtime not kept: %d %v", st.Mtim.Sec, err)
	}
	if err := unix.Lstat(filepath.Join(dir, "dev/null"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Errorf("char device: %v %o", err, st.Mode)
	}
}

func TestApplyHostilePathsStayInside(t *testing.T) {
	requireRoot(t)
	outside := t.TempDir()
	dir := filepath.Join(t.TempDir(), "root")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := layer(t,
		entry{name: "../../../../" + outside + "/dotdot", body: "x"},
		entry{name: outside + "/absolute", body: "x"},
		// A symlink to the outside, then a file through it.
		entry{name: "evil", typ: tar.TypeSymlink, link: outside},
		entry{name: "evil/through-symlink", body: "x"},
		entry{name: "evil2", typ: tar.TypeSymlink, link: "../../../../../" + outside},
		entry{name: "evil2/through-relative-symlink", body: "x"},
		// A hard link to a host file.
		entry{name: "passwd", typ: tar.TypeLink, link: "/etc/passwd"},
	)
	_, err := Apply(dir, bytes.NewReader(data), Delete)
	// The hard link must fail (there is no /etc/passwd inside the layer);
	// whether or not it does, nothing may appear outside.
	if err == nil || !strings.Contains(err.Error(), "hard link") {
		t.Errorf("hard link to a host file: err = %v", err)
	}
	entries, _ := os.ReadDir(outside)
	for _, e := range entries {
		t.Errorf("layer wrote %s outside its root", e.Name())
	}
	for _, p := range []string{"dotdot", "absolute"} {
		if _, err := os.Stat(filepath.Join(dir, outside, p)); err != nil {
			t.Errorf("%s not written inside the root: %v", p, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, outside, "through-symlink")); err != nil {
		t.Errorf("a write through a symlink did not land inside the root: %v", err)
	}
}

func TestApplyWhiteouts(t *testing.T) {
	requireRoot(t)
	lower := layer(t,
		entry{name: "a/", typ: tar.TypeDir},
		entry{name: "a/keep", body: "k"},
		entry{name: "a/gone", body: "g"},
		entry{name: "opq/", typ: tar.TypeDir},
		entry{name: "opq/old", body: "o"},
	)
	upper := layer(t,
		entry{name: "a/.wh.gone"},
		entry{name: "opq/", typ: tar.TypeDir},
		entry{name: "opq/.wh..wh..opq"},
		entry{name: "opq/new", body: "n"},
	)
	// Delete mode: the layers stacked in one directory.
	dir := t.TempDir()
	for _, l := range [][]byte{lower, upper} {
		if _, err := Apply(dir, bytes.NewReader(l), Delete); err != nil {
			t.Fatal(err)
		}
	}
	for p, want := range map[string]bool{"a/keep": true, "a/gone": false, "opq/old": false, "opq/new": true} {
		if _, err := os.Lstat(filepath.Join(dir, p)); (err == nil) != want {
			t.Errorf("delete mode: %s present=%v, want %v", p, err == nil, want)
		}
	}
	// Overlay mode: the upper layer alone, with overlay's markers.
	up := t.TempDir()
	if _, err := Apply(up, bytes.NewReader(upper), Overlay); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(up, "a/gone"), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("overlay whiteout: %v mode %o rdev %d", err, st.Mode, st.Rdev)
	}
	buf := make([]byte, 4)
	if n, err := unix.Getxattr(filepath.Join(up, "opq"), "trusted.overlay.opaque", buf); err != nil || string(buf[:n]) != "y" {
		t.Errorf("opaque marker: %q %v", buf[:n], err)
	}
	if _, err := os.Lstat(filepath.Join(up, "opq/.wh..wh..opq")); err == nil {
		t.Error("the opaque marker file itself was written")
	}
}

func TestApplyCompressedAndTruncated(t *testing.T) {
	requireRoot(t)
	data := layer(t, entry{name: "f", body: strings.Repeat("z", 10000)})
	var gz, zs bytes.Buffer
	gw := gzip.NewWriter(&gz)
	gw.Write(data)
	gw.Close()
	zw, _ := zstd.NewWriter(&zs)
	zw.Write(data)
	zw.Close()
	want, _ := Apply(t.TempDir(), bytes.NewReader(data), Delete)
	for name, b := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs.Bytes()} {
		got, err := Apply(t.TempDir(), bytes.NewReader(b), Delete)
		if err != nil || got.DiffID != want.DiffID {
			t.Errorf("%s: %v, diffID %s want %s", name, err, got.DiffID, want.DiffID)
		}
	}
	if _, err := Apply(t.TempDir(), bytes.NewReader(data[:700]), Delete); err == nil {
		t.Error("a truncated layer applied without error")
	}
	if _, err := Apply(t.TempDir(), bytes.NewReader(gz.Bytes()[:len(gz.Bytes())/2]), Delete); err == nil {
		t.Error("a truncated gzip layer applied without error")
	}
}
