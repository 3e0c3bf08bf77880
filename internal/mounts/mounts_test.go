package mounts

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/testutil"
	vol "github.com/tent-project/tent/internal/volume"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

func TestParse(t *testing.T) {
	cfg := &container.Config{Volumes: map[string]struct{}{"/anon": {}, "/data": {}, "/t": {}}}
	hc := &container.HostConfig{
		Binds: []string{"/host/dir:/in:ro,rslave", "named:/data:nocopy", "/bare"},
		Mounts: []mount.Mount{
			{Type: mount.TypeBind, Source: "/src", Target: "/b", ReadOnly: true, BindOptions: &mount.BindOptions{NonRecursive: true}},
			{Type: mount.TypeTmpfs, Target: "/t", TmpfsOptions: &mount.TmpfsOptions{SizeBytes: 1 << 20, Mode: 0o1777}},
		},
	}
	mps, err := Parse(cfg, hc, false)
	if err != nil {
		t.Fatal(err)
	}
	want := []Point{
		{Type: mount.TypeBind, Source: "/host/dir", Destination: "/in", Mode: "ro,rslave", Propagation: "rslave"},
		{Type: mount.TypeVolume, Name: "named", Destination: "/data", RW: true, Mode: "nocopy", NoCopy: true},
		{Type: mount.TypeVolume, Destination: "/bare", RW: true},
		{Type: mount.TypeBind, Source: "/src", Destination: "/b", MustExist: true, Propagation: "rprivate", NonRecursive: true},
		{Type: mount.TypeVolume, Destination: "/anon", RW: true}, // the config's: anonymous
	}
	if len(mps) != len(want) {
		t.Fatalf("%d mount points: %+v", len(mps), mps)
	}
	for i := range want {
		if !equal(mps[i], want[i]) {
			t.Errorf("mount point %d: %+v, want %+v", i, mps[i], want[i])
		}
	}
	if hc.Tmpfs["/t"] != "size=1048576,mode=1777" {
		t.Errorf("--mount tmpfs: %q", hc.Tmpfs)
	}
	if names := VolumeNames(mps); !slices.Equal(names, []string{"named", "", ""}) {
		t.Errorf("volume names: %q", names)
	}
	// API < 1.44: read-only at the top only.
	if mps, _ := Parse(&container.Config{}, &container.HostConfig{Binds: []string{"/a:/a:ro"}}, true); !mps[0].ReadOnlyNonRecursive {
		t.Errorf("old API's read-only bind: %+v", mps[0])
	}
}

func equal(a, b Point) bool {
	return a.Type == b.Type && a.Name == b.Name && a.Source == b.Source && a.Destination == b.Destination && a.RW == b.RW &&
		a.Mode == b.Mode && a.Propagation == b.Propagation && a.NoCopy == b.NoCopy && a.MustExist == b.MustExist && a.NonRecursive == b.NonRecursive
}

func TestParseRefusals(t *testing.T) {
	for _, tc := range []struct {
		hc  container.HostConfig
		msg string
	}{
		{container.HostConfig{Binds: []string{"/a:/b:c:d"}}, "invalid volume specification"},
		{container.HostConfig{Binds: []string{"/a:rel"}}, "mount path must be absolute"},
		{container.HostConfig{Binds: []string{"/a:/"}}, "destination can't be '/'"},
		{container.HostConfig{Binds: []string{"/a:/x", "vv:/x"}}, "Duplicate mount point: /x"},
		{container.HostConfig{Binds: []string{"/a:/x:bogus"}}, "invalid mode: bogus"},
		{container.HostConfig{Binds: []string{"vv:/x:rshared"}}, "invalid mode: rshared"},
		{container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "rel", Target: "/x"}}}, "mount path must be absolute"},
		{container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeBind, Source: "/a", Target: "/x", BindOptions: &mount.BindOptions{ReadOnlyNonRecursive: true}}}}, "need ReadOnly"},
		{container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeVolume, Source: "vv", Target: "/x", VolumeOptions: &mount.VolumeOptions{Subpath: "s"}}}}, "subpath (s) is not supported yet"},
		{container.HostConfig{Mounts: []mount.Mount{{Type: mount.TypeNamedPipe, Source: "p", Target: "/x"}}}, "is not supported"},
	} {
		_, err := Parse(&container.Config{}, &tc.hc, false)
		if err == nil || !strings.Contains(err.Error(), tc.msg) || !(errdefs.IsInvalidArgument(err) || errors.Is(err, errdefs.ErrNotImplemented)) {
			t.Errorf("%q %+v: %v, want %q", tc.hc.Binds, tc.hc.Mounts, err, tc.msg)
		}
	}
}

// TestVolumes: SetUp makes the named and anonymous volumes, CopyUp fills
// an empty one from the image once, Spec and API name their paths.
func TestVolumes(t *testing.T) {
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	vols := vol.New(db, filepath.Join(root, "volumes"), func(events.Action, string) {})
	mps, _ := Parse(&container.Config{Volumes: map[string]struct{}{"/etc": {}}}, &container.HostConfig{Binds: []string{"data:/data:ro", filepath.Join(root, "made") + ":/b"}}, false)
	vols.Lock()
	made, err := SetUp(vols, mps)
	vols.Unlock()
	if err != nil || len(made) != 2 || made[0] != "data" || mps[2].Name == "" {
		t.Fatalf("set up: %q %+v %v", made, mps, err)
	}
	image := filepath.Join(root, "rootfs")
	os.MkdirAll(filepath.Join(image, "etc"), 0o755)
	os.WriteFile(filepath.Join(image, "etc", "hosts"), []byte("x"), 0o644)
	if err := CopyUp(vols, mps, image); err != nil || !mps[2].Copied {
		t.Fatalf("copy up: %v %+v", err, mps[2])
	}
	if b, err := os.ReadFile(filepath.Join(vols.Path(mps[2].Name), "hosts")); err != nil || string(b) != "x" {
		t.Errorf("the image's /etc/hosts in the volume: %q %v", b, err)
	}
	sm, err := Spec(vols, mps)
	if err != nil || len(sm) != 3 || sm[0].Source != vols.Path("data") || !slices.Contains(sm[0].Options, "ro") {
		t.Fatalf("spec: %+v %v", sm, err)
	}
	if _, err := os.Stat(filepath.Join(root, "made")); err != nil {
		t.Errorf("a -v bind's missing source is made: %v", err)
	}
	api := API(vols, mps)
	if api[0].Name != "data" || api[0].Driver != "local" || api[0].RW || api[1].Type != mount.TypeBind || api[1].Source != filepath.Join(root, "made") {
		t.Errorf("api: %+v", api)
	}
}

// TestBindAll: binds go where the view's paths lead inside it (made if
// missing, a symlink resolved within the view), read-only if asked.
func TestBindAll(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	root, src, file := filepath.Join(dir, "root"), filepath.Join(dir, "src"), filepath.Join(dir, "file")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.Symlink("/etc", filepath.Join(root, "link"))
	os.MkdirAll(src, 0o755)
	os.WriteFile(filepath.Join(src, "x"), []byte("x"), 0o644)
	os.WriteFile(file, []byte("f"), 0o644)
	err := BindAll(root, []specs.Mount{{Source: src, Destination: "/link/data", Options: []string{"rbind", "ro"}}, {Source: file, Destination: "/new/file", Options: []string{"rbind"}}})
	defer unix.Unmount(filepath.Join(root, "etc", "data"), unix.MNT_DETACH)
	defer unix.Unmount(filepath.Join(root, "new", "file"), unix.MNT_DETACH)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "etc", "data", "x")); err != nil || string(b) != "x" {
		t.Errorf("the directory bind through the view's symlink: %q %v", b, err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc", "data", "y"), nil, 0o644); err == nil {
		t.Error("a read-only bind was written")
	}
	if b, err := os.ReadFile(filepath.Join(root, "new", "file")); err != nil || string(b) != "f" {
		t.Errorf("the file bind: %q %v", b, err)
	}
}
