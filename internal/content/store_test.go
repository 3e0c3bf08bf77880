package content

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/errdefs"
)

func TestIngestOpenDelete(t *testing.T) {
	s, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	want := digest.FromString("hello")
	d, n, err := s.Ingest(strings.NewReader("hello"), want)
	if err != nil || d != want || n != 5 {
		t.Fatalf("Ingest = %s %d %v", d, n, err)
	}
	// Again: already there, same answer.
	if d2, _, err := s.Ingest(strings.NewReader("hello"), ""); err != nil || d2 != want {
		t.Fatalf("second Ingest = %s %v", d2, err)
	}
	f, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "hello" {
		t.Fatalf("content %q", b)
	}
	if size, err := s.Size(d); err != nil || size != 5 {
		t.Fatalf("Size = %d %v", size, err)
	}
	var walked []digest.Digest
	_ = s.Walk(func(d digest.Digest, _ int64) error { walked = append(walked, d); return nil })
	if len(walked) != 1 || walked[0] != d {
		t.Fatalf("Walk = %v", walked)
	}
	if err := s.Delete(d); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(d); !errdefs.IsNotFound(err) {
		t.Fatalf("Open after Delete: %v", err)
	}
}

func TestIngestRejectsWrongDigestAndKeepsNothing(t *testing.T) {
	root := t.TempDir()
	s, _ := New(root)
	_, _, err := s.Ingest(strings.NewReader("evil"), digest.FromString("good"))
	if !errdefs.IsInvalidArgument(err) {
		t.Fatalf("wrong digest: %v", err)
	}
	for _, dir := range []string{"blobs/sha256", "ingest"} {
		if entries, _ := os.ReadDir(filepath.Join(root, dir)); len(entries) != 0 {
			t.Errorf("%s holds %d files after a refused ingest", dir, len(entries))
		}
	}
	if _, err := s.Open("sha256:../../etc/passwd"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a malformed digest: %v", err)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		f.n--
		return copy(p, "data"), nil
	}
	return 0, errors.New("connection reset")
}

func TestInterruptedIngestLeavesNothing(t *testing.T) {
	root := t.TempDir()
	s, _ := New(root)
	if _, _, err := s.Ingest(&failingReader{n: 3}, ""); err == nil {
		t.Fatal("ingest of a failing reader succeeded")
	}
	// A crash mid-ingest leaves a temporary file; reopening sweeps it.
	if err := os.WriteFile(filepath.Join(root, "ingest", "blob-crashed"), []byte("part"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := New(root); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"blobs/sha256", "ingest"} {
		if entries, _ := os.ReadDir(filepath.Join(root, dir)); len(entries) != 0 {
			t.Errorf("%s holds %d files", dir, len(entries))
		}
	}
}
