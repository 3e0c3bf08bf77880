package archive

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestTreeChangesAndLayer(t *testing.T) {
	base, changed := t.TempDir(), t.TempDir()
	at := time.Unix(1700000000, 0)
	for _, root := range []string{base, changed} {
		for _, d := range []string{"etc", "gone/deep", "same", "lost+found"} {
			os.MkdirAll(filepath.Join(root, d), 0o755)
		}
		for name, content := range map[string]string{"etc/conf": "a", "same/f": "x", "gone/deep/f": "y", "etc/hosts": "h"} {
			p := filepath.Join(root, name)
			os.WriteFile(p, []byte(content), 0o644)
			os.Chtimes(p, at, at)
		}
		os.Symlink("same/f", filepath.Join(root, "link"))
	}
	// The changes: a file rewritten, one added in a new directory, a
	// tree deleted, a link retargeted, an ignored file changed.
	os.WriteFile(filepath.Join(changed, "etc/conf"), []byte("bb"), 0o644)
	os.MkdirAll(filepath.Join(changed, "new/dir"), 0o755)
	os.WriteFile(filepath.Join(changed, "new/dir/f"), []byte("n"), 0o600)
	os.RemoveAll(filepath.Join(changed, "gone"))
	os.Remove(filepath.Join(changed, "link"))
	os.Symlink("elsewhere", filepath.Join(changed, "link"))
	os.WriteFile(filepath.Join(changed, "etc/hosts"), []byte("other"), 0o644)

	got, err := TreeChanges(base, changed, nil, map[string]bool{"etc/hosts": true, "lost+found": true})
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{"/etc", ChangeModify}, {"/etc/conf", ChangeModify}, {"/gone", ChangeDelete}, {"/link", ChangeModify},
		{"/new", ChangeAdd}, {"/new/dir", ChangeAdd}, {"/new/dir/f", ChangeAdd}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}

	var buf bytes.Buffer
	if _, err := WriteTreeDiff(&buf, changed, got); err != nil {
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
	}
	if diff := cmp.Diff([]string{"etc/", "etc/conf", ".wh.gone", "link", "new/", "new/dir/", "new/dir/f"}, names); diff != "" {
		t.Errorf("layer entries (-want +got):\n%s", diff)
	}
}

// A directory copied up only to hold the engine's mount points is no
// change; one with a change below it is.
func TestChangesLeaveOutCopiedUpDirectories(t *testing.T) {
	lower, upper := t.TempDir(), t.TempDir()
	for _, root := range []string{lower, upper} {
		os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	}
	os.MkdirAll(filepath.Join(lower, "var", "lib"), 0o755)
	os.WriteFile(filepath.Join(lower, "etc", "passwd"), []byte("root"), 0o644)
	os.WriteFile(filepath.Join(upper, "etc", "hosts"), nil, 0o644) // a mount point of the engine's
	skip := map[string]bool{"etc/hosts": true}
	got, err := Changes(upper, lower, skip)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("changes of mount points alone: %v", got)
	}
	os.WriteFile(filepath.Join(upper, "etc", "passwd"), []byte("root2"), 0o644)
	os.MkdirAll(filepath.Join(upper, "var", "lib"), 0o755) // copied up: something below changed
	os.WriteFile(filepath.Join(upper, "var", "lib", "new"), []byte("n"), 0o644)
	got, err = Changes(upper, lower, skip)
	if err != nil {
		t.Fatal(err)
	}
	want := []Change{{"/etc", ChangeModify}, {"/etc/passwd", ChangeModify}, {"/var", ChangeModify}, {"/var/lib", ChangeModify}, {"/var/lib/new", ChangeAdd}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
}
