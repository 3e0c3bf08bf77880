package userdb

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
)

func root(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc", "group"), []byte("root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n"), 0o644)
	return dir
}

func TestResolveUser(t *testing.T) {
	r := root(t)
	for _, tc := range []struct {
		user string
		want specs.User
	}{
		{"", specs.User{}},
		{"app", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{50}}},
		{"1000", specs.User{UID: 1000, GID: 1000, AdditionalGids: []uint32{50}}},
		{"app:staff", specs.User{UID: 1000, GID: 50}},
		{"4242:7", specs.User{UID: 4242, GID: 7}},
	} {
		got, err := ResolveUser(r, tc.user)
		if err != nil {
			t.Errorf("%q: %v", tc.user, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%q (-want +got):\n%s", tc.user, diff)
		}
	}
	for _, bad := range []string{"nobody", "app:nogroup"} {
		if _, err := ResolveUser(r, bad); !errdefs.IsInvalidArgument(err) {
			t.Errorf("%q: %v, want an invalid argument", bad, err)
		}
	}
	// A symlink in the image cannot make the daemon read a host file.
	os.Remove(filepath.Join(r, "etc", "passwd"))
	os.Symlink("/etc/passwd", filepath.Join(r, "etc", "passwd"))
	if _, err := ResolveUser(r, "root"); err == nil {
		t.Errorf("resolved a user through a symlink to the host's passwd")
	}
}
