package integration

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/testutil"
)

func i64(n int64) *int64   { return &n }
func u64(n uint64) *uint64 { return &n }
func u16(n uint16) *uint16 { return &n }

// readCgroup reads a control file of a container's cgroup, the v1 or v2 name.
func readCgroup(t *testing.T, path, v1ctrl, v1file, v2file string) string {
	t.Helper()
	p := filepath.Join("/sys/fs/cgroup", v1ctrl, path, v1file)
	if cgroups.Unified() {
		p = filepath.Join("/sys/fs/cgroup", path, v2file)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("read %s: %v", p, err)
	}
	return strings.TrimSpace(string(b))
}

func TestCgroupLimits(t *testing.T) {
	r := newRT(t)
	cgPath := "/tent-test/limits"
	b := testutil.Bundle(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(64 << 20), Reservation: i64(32 << 20)}
		s.Linux.Resources.CPU = &specs.LinuxCPU{Shares: u64(512), Quota: i64(50000), Period: u64(100000), Cpus: "0"}
		pids := int64(20)
		s.Linux.Resources.Pids = &specs.LinuxPids{Limit: &pids}
		if cgroups.BlkioWeightSupported() { // not where no I/O scheduler has weights (this CI host: none, mq-deadline)
			s.Linux.Resources.BlockIO = &specs.LinuxBlockIO{Weight: u16(300)}
		}
	})
	t.Cleanup(func() {
		if parent, err := cgroups.New("/tent-test"); err == nil {
			_ = parent.Destroy()
		}
	})
	r.ok("run", "-d", "--bundle", b, "limits")
	r.waitStatus("limits", "running")

	for _, c := range []struct{ ctrl, v1, v2, want string }{
		{"memory", "memory.limit_in_bytes", "memory.max", "67108864"},
		{"memory", "memory.soft_limit_in_bytes", "memory.low", "33554432"},
		{"pids", "pids.max", "pids.max", "20"},
		{"cpuset", "cpuset.cpus", "cpuset.cpus", "0"},
	} {
		if got := readCgroup(t, cgPath, c.ctrl, c.v1, c.v2); got != c.want {
			t.Errorf("%s = %q, want %q", c.v1, got, c.want)
		}
	}
	if cgroups.Unified() {
		if got := readCgroup(t, cgPath, "", "", "cpu.max"); got != "50000 100000" {
			t.Errorf("cpu.max = %q", got)
		}
	} else {
		if got := readCgroup(t, cgPath, "cpu", "cpu.cfs_quota_us", ""); got != "50000" {
			t.Errorf("cpu.cfs_quota_us = %q", got)
		}
		if got := readCgroup(t, cgPath, "cpu", "cpu.shares", ""); got != "512" {
			t.Errorf("cpu.shares = %q", got)
		}
	}
	// The init is in the cgroup, and so is an exec'd process.
	pid := int(r.state("limits")["pid"].(float64))
	procs := readCgroup(t, cgPath, "pids", "cgroup.procs", "cgroup.procs")
	if !strings.Contains(procs, itoa(pid)) {
		t.Errorf("init %d not in cgroup.procs %q", pid, procs)
	}
	// Inside, the cgroup namespace shows the container's cgroup as "/";
	// the host sees where it really is.
	if out := r.ok("exec", "limits", "cat", "/proc/self/cgroup"); !strings.Contains(out, ":memory:/\n") && !cgroups.Unified() {
		t.Errorf("exec'd process cgroups inside:\n%s", out)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("exec", "-d", "--pid-file", pidFile, "limits", "sleep", "100")
	execPid, _ := os.ReadFile(pidFile)
	if cg, _ := os.ReadFile("/proc/" + string(execPid) + "/cgroup"); !strings.Contains(string(cg), cgPath) {
		t.Errorf("exec'd process %s is not in %s:\n%s", execPid, cgPath, cg)
	}
	// The pids limit holds: 30 sleepers cannot all start.
	res := r.run("", nil, "exec", "limits", "sh", "-c", "for i in $(seq 30); do sleep 100 & done; echo started")
	if !strings.Contains(res.Stderr, "can't fork") && !strings.Contains(res.Stderr, "Resource temporarily unavailable") {
		t.Errorf("30 processes started under pids.max 20: %s", res)
	}
	if cur, _ := strconv.Atoi(readCgroup(t, cgPath, "pids", "pids.current", "pids.current")); cur > 20 {
		t.Errorf("pids.current = %d with pids.max 20", cur)
	}
	// update changes the limits of a running container.
	r.ok("update", "--memory", "134217728", "--pids-limit", "50", "limits")
	if got := readCgroup(t, cgPath, "memory", "memory.limit_in_bytes", "memory.max"); got != "134217728" {
		t.Errorf("after update: memory limit %q", got)
	}
	if got := readCgroup(t, cgPath, "pids", "pids.max", "pids.max"); got != "50" {
		t.Errorf("after update: pids.max %q", got)
	}
	r.ok("delete", "--force", "limits")
	r.assertGone("limits", cgPath)
}

func TestMemoryLimitKills(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"}, func(s *specs.Spec) {
		s.Linux.Resources.Memory = &specs.LinuxMemory{Limit: i64(16 << 20), Swap: i64(16 << 20)}
	})
	res := r.run(b, nil, "run", "oom")
	if res.Code == 0 || strings.Contains(res.Stdout, "survived") {
		t.Errorf("a 64 MiB allocation survived a 16 MiB limit: %s", res)
	}
}

func TestDeviceRules(t *testing.T) {
	r := newRT(t)
	// The default spec denies all devices but the standard ones; CAP_MKNOD
	// may create a node, but the cgroup forbids opening it.
	b := testutil.Bundle(t, []string{"sh", "-c", "mknod /dev/mem2 c 1 1 && (head -c1 /dev/mem2 >/dev/null 2>&1 && echo mem-open || echo mem-denied); head -c1 /dev/zero | wc -c"}, func(s *specs.Spec) {
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_MKNOD")
		s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_MKNOD")
		s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_MKNOD")
		s.Linux.Seccomp = nil
	})
	res := r.run(b, nil, "run", "devices")
	if res.Code != 0 || !strings.Contains(res.Stdout, "mem-denied") || !strings.Contains(res.Stdout, "\n1\n") {
		t.Errorf("device cgroup: %s", res)
	}
}

func TestCgroupNamespaceAndMount(t *testing.T) {
	r := newRT(t)
	out := r.runOut("cgns", []string{"sh", "-c", "cat /proc/self/cgroup | head -3; ls /sys/fs/cgroup"}, nil)
	// In its own cgroup namespace the container sees itself at the root.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, ":/cgns") {
			t.Errorf("cgroup namespace not rooted at the container's cgroup: %q", line)
		}
	}
	if !strings.Contains(out, "memory") && !cgroups.Unified() {
		t.Errorf("cgroup mount lacks controllers:\n%s", out)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
