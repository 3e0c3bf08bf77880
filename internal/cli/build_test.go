package cli

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestContextStat: the digest standing for a context's files is the
// same for the same files, changes with a file's content (same size,
// same modification time) or name, and is not made while a file is
// younger than two seconds.
func TestContextStat(t *testing.T) {
	dir := t.TempDir()
	for name, body := range map[string]string{"Dockerfile": "FROM busybox\n", "src/a": "alpha", "src/b": "bravo", "skip/x": "x"} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	stat := func(now time.Time, pats ...string) string {
		t.Helper()
		files, err := scanContext(dir, pats, "")
		if err != nil {
			t.Fatal(err)
		}
		return contextStat(dir, "", files, now)
	}
	if s := stat(time.Now()); s != "" {
		t.Errorf("files written just now: digest %q, want none", s)
	}
	later := time.Now().Add(3 * time.Second)
	first := stat(later)
	if first == "" || stat(later) != first {
		t.Fatalf("the same files: %q, then %q", first, stat(later))
	}
	if stat(later, "skip") == first {
		t.Error("files left out by .dockerignore patterns: the same digest")
	}
	a := filepath.Join(dir, "src", "a")
	fi, _ := os.Stat(a)
	if err := os.WriteFile(a, []byte("ALPHA"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chtimes(a, fi.ModTime(), fi.ModTime()) // the modification time put back
	later = time.Now().Add(3 * time.Second)
	changed := stat(later)
	if changed == first || changed == "" {
		t.Errorf("a file changed in place: digest %q (was %q)", changed, first)
	}
	if err := os.Rename(filepath.Join(dir, "src", "b"), filepath.Join(dir, "src", "c")); err != nil {
		t.Fatal(err)
	}
	if s := stat(later); s == changed || s == "" {
		t.Errorf("a file renamed: digest %q (was %q)", s, changed)
	}
}
