package testutil

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/oci"
	bolt "go.etcd.io/bbolt"
)

// RequiresRoot skips the test unless it runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
}

// Busybox returns the path of a static busybox on the host, or skips.
func Busybox(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"/bin/busybox", "/usr/bin/busybox"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no static busybox (apt-get install busybox-static)")
	return ""
}

// BusyboxRootfs fills dir with a busybox root file system: the binary and
// a link for each applet in /bin, and the usual empty directories.
func BusyboxRootfs(t testing.TB, dir string) {
	t.Helper()
	bb := Busybox(t)
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp", "root"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bb, "--list").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, applet := range strings.Fields(string(out)) {
		if applet != "busybox" {
			_ = os.Symlink("busybox", filepath.Join(bin, applet))
		}
	}
	passwd := "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte(passwd), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "group"), []byte("root:x:0:\nnogroup:x:65534:\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// Bundle makes an OCI bundle in a fresh temporary directory: a busybox
// rootfs and the default spec without a terminal, running args, changed
// by edit. It returns the bundle directory.
func Bundle(t testing.TB, args []string, edit func(*specs.Spec)) string {
	t.Helper()
	dir := t.TempDir()
	BusyboxRootfs(t, filepath.Join(dir, "rootfs"))
	s := oci.DefaultSpec(false)
	s.Process.Terminal = false
	s.Process.Args = args
	if edit != nil {
		edit(s)
	}
	WriteSpec(t, dir, s)
	return dir
}

// WriteSpec writes s as dir/config.json.
func WriteSpec(t testing.TB, dir string, s *specs.Spec) {
	t.Helper()
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Eventually polls cond for up to ten seconds and fails the test if it
// never holds.
func Eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BuildAgent builds tent-agent, the VM guest's init, into dir and returns
// its path.
func BuildAgent(t testing.TB, dir string) string {
	t.Helper()
	agent := filepath.Join(dir, "tent-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", agent, "github.com/tent-project/tent/cmd/tent-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the agent: %v: %s", err, out)
	}
	return agent
}

// BoltDB is a metadata database in a temporary directory, closed at the
// test's end.
func BoltDB(t testing.TB) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// RemoveCgroupParent removes a test's cgroup parent: the engine's
// hierarchies (cgroups.Destroy) and, on a hybrid host, the directory that
// runc (an engine's other runtime, or dockerd's) also makes for it in the
// unified hierarchy, which nothing else removes.
func RemoveCgroupParent(parent string) error {
	var errs []error
	if cg, err := cgroups.New(parent); err == nil {
		errs = append(errs, cg.Destroy())
	}
	if !cgroups.Unified() {
		if err := os.Remove(filepath.Join("/sys/fs/cgroup/unified", parent)); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
