package builder

import (
	"archive/tar"
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/errdefs"
)

func contextTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	tw.Close()
	return buf.Bytes()
}

// ctxDir is a context directory that is unmounted (the in-memory
// context is a tmpfs) and removed after the test.
func ctxDir(t *testing.T) *workDir {
	w := &workDir{parent: t.TempDir()}
	t.Cleanup(w.remove)
	return w
}

func TestReadContext(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root (the context's tmpfs)")
	}
	files := map[string]string{
		"Dockerfile": "FROM scratch\n", "keep.txt": "k", "logs/a.log": "a", "logs/important.log": "i",
		"build.log": "b", ".dockerignore": "*.log\nlogs\n!logs/important.log\n", ".wh.plain": "not a whiteout",
	}
	work := ctxDir(t)
	c, err := readContext(bytes.NewReader(contextTar(t, files)), work, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if string(c.dockerfile) != "FROM scratch\n" || c.dockerfileName != "Dockerfile" || len(c.digest) != 64 {
		t.Errorf("Dockerfile %q (%s), digest %q", c.dockerfile, c.dockerfileName, c.digest)
	}
	// The Dockerfile is read from the tar: nothing is unpacked before a
	// step needs the files.
	if ents, _ := os.ReadDir(work.parent); len(ents) != 0 {
		t.Errorf("unpacked (or a work directory made) before it was needed: %v", ents)
	}
	dir, err := c.unpacked()
	if err != nil || dir != filepath.Join(work.dir, "context") {
		t.Fatalf("unpack: %q %v", dir, err)
	}
	for name, want := range map[string]bool{"keep.txt": true, "build.log": false, "logs/a.log": false,
		"logs/important.log": true, "Dockerfile": true, ".dockerignore": true, ".wh.plain": true} {
		if _, err := os.Stat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s: present %v, want %v", name, err == nil, want)
		}
	}
	// A body that is no tar is the Dockerfile itself.
	c, err = readContext(strings.NewReader("FROM busybox\nRUN true\n"), ctxDir(t), "", 0)
	if err != nil || !strings.HasPrefix(string(c.dockerfile), "FROM busybox") || c.dockerfileName != "-" {
		t.Errorf("bare Dockerfile: %v %q", err, c.dockerfile)
	}
	// A Dockerfile that is a link in the context is read through it.
	var lb bytes.Buffer
	tw := tar.NewWriter(&lb)
	tw.WriteHeader(&tar.Header{Name: "real.Dockerfile", Mode: 0o644, Size: 13, Typeflag: tar.TypeReg})
	tw.Write([]byte("FROM scratch\n"))
	tw.WriteHeader(&tar.Header{Name: "Dockerfile", Linkname: "real.Dockerfile", Typeflag: tar.TypeSymlink})
	tw.Close()
	if c, err = readContext(&lb, ctxDir(t), "", 0); err != nil || string(c.dockerfile) != "FROM scratch\n" {
		t.Errorf("a linked Dockerfile: %v %q", err, c.dockerfile)
	}
	// Limits and a missing Dockerfile are the client's mistakes.
	big := contextTar(t, map[string]string{"Dockerfile": "FROM scratch\n", "big": strings.Repeat("x", 64<<10)})
	if _, err := readContext(bytes.NewReader(big), ctxDir(t), "", 32<<10); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "larger") {
		t.Errorf("over the limit: %v", err)
	}
	if _, err := readContext(bytes.NewReader(contextTar(t, map[string]string{"x": "y"})), ctxDir(t), "Other", 0); !errdefs.IsInvalidArgument(err) {
		t.Errorf("missing Dockerfile: %v", err)
	}
}

func TestExpandPorts(t *testing.T) {
	for in, want := range map[string][]string{"80": {"80/tcp"}, "53/UDP": {"53/udp"}, "8000-8002": {"8000/tcp", "8001/tcp", "8002/tcp"}} {
		if got, err := expandPorts(in); err != nil || !slices.Equal(got, want) {
			t.Errorf("%s: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "http", "80/icmp", "90-80", "70000"} {
		if _, err := expandPorts(bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%s: %v, want an invalid-argument error", bad, err)
		}
	}
}

// A step's key changes with each of its inputs, and only with them.
func TestCacheKey(t *testing.T) {
	base := cacheKey("sha256:aa", "run", []string{"sh", "-c", "true"}, []string{"A=1"})
	if base != cacheKey("sha256:aa", "run", []string{"sh", "-c", "true"}, []string{"A=1"}) {
		t.Error("the same step got two keys")
	}
	for _, other := range []string{
		cacheKey("sha256:bb", "run", []string{"sh", "-c", "true"}, []string{"A=1"}),
		cacheKey("sha256:aa", "run", []string{"sh", "-c", "false"}, []string{"A=1"}),
		cacheKey("sha256:aa", "run", []string{"sh", "-c", "true"}, []string{"A=2"}),
	} {
		if other == base {
			t.Error("a different step got the same key")
		}
	}
}

func TestCheckPlatform(t *testing.T) {
	if err := checkPlatform(""); err != nil {
		t.Error(err)
	}
	if err := checkPlatform("linux/s390x"); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("a foreign platform: %v, want not implemented", err)
	}
}
