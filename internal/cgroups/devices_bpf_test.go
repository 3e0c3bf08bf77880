package cgroups

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// unifiedRoot finds a cgroup2 mount to attach device programs to: the
// whole hierarchy on a v2 host, /sys/fs/cgroup/unified on a hybrid one.
func unifiedRoot(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	t.Skip("no cgroup2 mount on this host")
	return ""
}

func TestDeviceProgramEnforces(t *testing.T) {
	root := unifiedRoot(t)
	dir := filepath.Join(root, "tent-devtest-"+strconv.Itoa(os.Getpid()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	defer removeDir(dir)
	rules := []specs.LinuxDeviceCgroup{
		{Allow: false, Access: "rwm"},
		{Allow: true, Type: "c", Major: i64(1), Minor: i64(3), Access: "rw"}, // null
	}
	if err := setDevicesBPF(dir, rules); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-c", "read go; cat /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null 2>&1 && echo zero-ok || echo zero-denied")
	stdin, _ := cmd.StdinPipe()
	var out strings.Builder
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := write(dir, "cgroup.procs", strconv.Itoa(cmd.Process.Pid)); err != nil {
		_ = cmd.Process.Kill()
		t.Fatal(err)
	}
	_, _ = io.WriteString(stdin, "go\n")
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if out.String() != "null-ok\nzero-denied\n" {
		t.Errorf("under the device program: %q, want null allowed and zero denied", out.String())
	}
}

func TestCompileDeviceRulesRejects(t *testing.T) {
	if _, err := compileDeviceRules([]specs.LinuxDeviceCgroup{{Type: "x"}}); err == nil {
		t.Error("unknown device type accepted")
	}
	if _, err := compileDeviceRules([]specs.LinuxDeviceCgroup{{Type: "c", Access: "z"}}); err == nil {
		t.Error("unknown access accepted")
	}
}

func TestConvertPath(t *testing.T) {
	for _, tc := range []struct {
		in      string
		systemd bool
		want    string
		ok      bool
	}{
		{"", false, "/abc", true},
		{"/docker/abc", false, "/docker/abc", true},
		{"system.slice:docker:abc", true, "/system.slice/docker-abc.scope", true},
		{"user-1000.slice:tent:x", true, "/user.slice/user-1000.slice/tent-x.scope", true},
		{"bad", true, "", false},
	} {
		got, err := ConvertPath(tc.in, "abc", tc.systemd)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ConvertPath(%q, %v) = %q, %v; want %q", tc.in, tc.systemd, got, err, tc.want)
		}
	}
}
