package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/testutil"
)

// runOut runs a container to completion and returns its stdout, failing on
// a non-zero exit.
func (r *rt) runOut(id string, args []string, edit func(*specs.Spec)) string {
	r.t.Helper()
	b := testutil.Bundle(r.t, args, edit)
	res := r.run(b, nil, "run", id)
	if res.Code != 0 {
		r.t.Fatalf("run %s: %s", id, res)
	}
	return res.Stdout
}

func TestNamespaces(t *testing.T) {
	r := newRT(t)
	hostNet, _ := os.Readlink("/proc/self/ns/net")
	hostUTS, _ := os.Readlink("/proc/self/ns/uts")
	out := r.runOut("ns", []string{"sh", "-c", "echo $$; hostname; cat /proc/sys/kernel/domainname; readlink /proc/self/ns/net; readlink /proc/self/ns/uts; ls /sys/class/net; cat /sys/class/net/lo/flags"}, func(s *specs.Spec) {
		s.Hostname = "box"
		s.Domainname = "example.org"
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 7 {
		t.Fatalf("output: %q", out)
	}
	if lines[0] != "1" {
		t.Errorf("pid in container = %s, want 1", lines[0])
	}
	if lines[1] != "box" || lines[2] != "example.org" {
		t.Errorf("hostname/domainname = %q/%q", lines[1], lines[2])
	}
	if lines[3] == hostNet || lines[4] == hostUTS {
		t.Errorf("container shares the host's namespaces: %q %q", lines[3], lines[4])
	}
	if lines[5] != "lo" {
		t.Errorf("interfaces in a new network namespace: %q, want only lo", lines[5])
	}
	// As runc: a network namespace the runtime makes has lo up (0x9:
	// IFF_UP|IFF_LOOPBACK), so 127.0.0.1 works in the container.
	if lines[6] != "0x9" {
		t.Errorf("lo flags in a new network namespace: %s, want 0x9 (up)", lines[6])
	}
}

func TestJoinNamespaceByPath(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sleep", "1000"}, nil)
	r.ok("run", "-d", "--bundle", b, "owner")
	pid := int(r.state("owner")["pid"].(float64))
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	got := r.runOut("joiner", []string{"readlink", "/proc/self/ns/net"}, func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/net", pid)
			}
		}
	})
	if strings.TrimSpace(got) != want {
		t.Errorf("joined network namespace %q, want %q", got, want)
	}
}

func TestUserNamespace(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sh", "-c", "id -u; cat /proc/self/uid_map; sleep 1000"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 65536}}
		s.Root.Readonly = true
	})
	// The rootfs must be usable by the mapped root, and the way to it
	// passable (t.TempDir makes 0700 directories).
	if err := chownTree(filepath.Join(b, "rootfs"), 100000); err != nil {
		t.Fatal(err)
	}
	for d := b; d != "/tmp" && d != "/"; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.ok("create", "--bundle", b, "userns")
	pid := int(r.state("userns")["pid"].(float64))
	r.ok("start", "userns")
	testutil.Eventually(t, func() bool {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		return strings.Contains(string(b), "Uid:\t100000")
	})
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if !strings.Contains(string(status), "Uid:\t100000\t100000") {
		t.Errorf("container root is not mapped to host uid 100000:\n%s", status)
	}
	// exec joins the container's user namespace too (internal/nsenter).
	wantNS, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
	out := r.ok("exec", "userns", "sh", "-c", "id -u; readlink /proc/self/ns/user; echo ok > /dev/shm/f && cat /dev/shm/f")
	if out != "0\n"+wantNS+"\nok\n" {
		t.Errorf("exec into the user namespace: %q, want uid 0 in %s", out, wantNS)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	r.ok("exec", "-d", "--pid-file", pidFile, "userns", "sleep", "100")
	execPid, _ := os.ReadFile(pidFile)
	if st, _ := os.ReadFile("/proc/" + string(execPid) + "/status"); !strings.Contains(string(st), "Uid:\t100000\t100000") {
		t.Errorf("exec'd process is not mapped root on the host:\n%s", st)
	}
}

func chownTree(root string, id int) error {
	return filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, id, id)
	})
}

func TestMounts(t *testing.T) {
	r := newRT(t)
	shared := t.TempDir()
	if err := os.WriteFile(filepath.Join(shared, "host.txt"), []byte("from host"), 0o644); err != nil {
		t.Fatal(err)
	}
	rw := t.TempDir()
	script := `
cat /data/host.txt; echo
touch /data/x 2>/dev/null && echo data-writable || echo data-readonly
echo hi > /rw/out && echo rw-ok
touch /newfile 2>/dev/null && echo root-writable || echo root-readonly
echo t > /scratch/f && echo tmpfs-ok
ls -l /dev/null /dev/zero /dev/full /dev/random /dev/urandom /dev/tty | awk '{print $1, $5, $6, $NF}'
readlink /dev/ptmx; readlink /dev/fd
wc -c < /proc/cpuinfo; ls /etc | wc -l
echo 1 > /proc/sys/kernel/ostype 2>/dev/null && echo sys-writable || echo sys-readonly
ls /sys/fs/cgroup | head -1
`
	out := r.runOut("mounts", []string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/data", Type: "bind", Source: shared, Options: []string{"rbind", "ro"}},
			specs.Mount{Destination: "/rw", Type: "bind", Source: rw, Options: []string{"bind"}},
			specs.Mount{Destination: "/scratch", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
		)
		// A masked file reads empty, a masked directory lists nothing.
		s.Linux.MaskedPaths = append(s.Linux.MaskedPaths, "/proc/cpuinfo", "/etc")
	})
	for _, want := range []string{
		"from host", "data-readonly", "rw-ok", "root-readonly", "tmpfs-ok",
		"crw-rw-rw- 1, 3 /dev/null", "crw-rw-rw- 1, 5 /dev/zero", "crw-rw-rw- 1, 7 /dev/full",
		"crw-rw-rw- 1, 8 /dev/random", "crw-rw-rw- 1, 9 /dev/urandom", "crw-rw-rw- 5, 0 /dev/tty",
		"pts/ptmx\n/proc/self/fd\n0\n0\n", "sys-readonly",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if got, _ := os.ReadFile(filepath.Join(rw, "out")); string(got) != "hi\n" {
		t.Errorf("write through rw bind mount: %q", got)
	}
	// The mounts were in the container's namespace only.
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), "/scratch") {
		t.Errorf("container mount leaked to the host")
	}
}

func TestMountSymlinkCannotEscapeRootfs(t *testing.T) {
	r := newRT(t)
	outside := t.TempDir()
	b := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/evil/mnt", Type: "tmpfs", Source: "tmpfs"})
	})
	// An image whose /evil points outside the rootfs.
	if err := os.Symlink(outside, filepath.Join(b, "rootfs", "evil")); err != nil {
		t.Fatal(err)
	}
	res := r.run(b, nil, "run", "escape")
	if res.Code != 0 {
		t.Fatalf("run: %s", res)
	}
	if _, err := os.Stat(filepath.Join(outside, "mnt")); err == nil {
		t.Errorf("a mount followed a symlink out of the rootfs")
	}
}

func TestProcessAttributes(t *testing.T) {
	r := newRT(t)
	script := `id; pwd; echo $FOO; umask; ulimit -n; ulimit -Hn; cat /proc/self/oom_score_adj
grep -E '^(CapEff|CapBnd|CapPrm|CapAmb|NoNewPrivs)' /proc/self/status`
	adj := 500
	umask := uint32(0o027)
	out := r.runOut("proc", []string{"sh", "-c", script}, func(s *specs.Spec) {
		s.Process.User = specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{2000, 2001}, Umask: &umask}
		s.Process.Cwd = "/work/dir"
		s.Root.Readonly = false
		s.Process.Env = append(s.Process.Env, "FOO=bar")
		s.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 321, Hard: 654}}
		s.Process.OOMScoreAdj = &adj
		s.Process.Capabilities = &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_KILL", "CAP_CHOWN"},
			Effective:   []string{"CAP_KILL"},
			Permitted:   []string{"CAP_KILL"},
			Ambient:     []string{"CAP_KILL"},
			Inheritable: []string{"CAP_KILL"},
		}
		s.Process.NoNewPrivileges = true
	})
	want := []string{
		"uid=1000 gid=1001 groups=2000,2001", "/work/dir", "bar", "0027", "321", "654", "500",
		"CapPrm:\t0000000000000020", "CapEff:\t0000000000000020", "CapBnd:\t0000000000000021",
		"CapAmb:\t0000000000000020", "NoNewPrivs:\t1",
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("missing %q in:\n%s", w, out)
		}
	}
}

func TestSysctl(t *testing.T) {
	r := newRT(t)
	out := r.runOut("sysctl", []string{"cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmni"}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ip_forward": "1", "kernel.shmmni": "1234"}
	})
	if out != "1\n1234\n" {
		t.Errorf("sysctls in the container: %q", out)
	}
	host, _ := os.ReadFile("/proc/sys/kernel/shmmni")
	if strings.TrimSpace(string(host)) == "1234" {
		t.Errorf("container sysctl changed the host")
	}
	// A sysctl that is not namespaced is refused before anything starts.
	b := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"vm.swappiness": "1"}
	})
	if res := r.run(b, nil, "run", "badsysctl"); res.Code == 0 || !strings.Contains(res.Stderr, "vm.swappiness") {
		t.Errorf("non-namespaced sysctl: %s", res)
	}
	r.assertGone("badsysctl", "/badsysctl")
}

func TestNoFdOrCwdLeaks(t *testing.T) {
	r := newRT(t)
	// Open a descriptor to a host directory in the runtime's environment:
	// it must not reach the container (CVE-2024-21626).
	out := r.runOut("fds", []string{"sh", "-c", "ls /proc/self/fd | tr '\\n' ' '; pwd"}, nil)
	// 3 is the directory ls itself opened.
	if out != "0 1 2 3 /\n" {
		t.Errorf("container sees fds/cwd %q, want only stdio (and ls's own) and /", out)
	}
	// A cwd given as a /proc/self/fd path must not lead out of the root.
	b := testutil.Bundle(t, []string{"pwd"}, func(s *specs.Spec) { s.Process.Cwd = "/proc/self/fd/7" })
	res := r.run(b, nil, "run", "cwdleak")
	if res.Code == 0 && strings.TrimSpace(res.Stdout) != "/proc/self/fd/7" {
		t.Errorf("cwd through a descriptor: %s", res)
	}
}

func TestNoPivot(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sh", "-c", "ls /; cat /proc/1/mountinfo | wc -l"}, nil)
	res := r.run(b, nil, "run", "--no-pivot", "nopivot")
	if res.Code != 0 || !strings.Contains(res.Stdout, "bin\n") {
		t.Fatalf("run --no-pivot: %s", res)
	}
	r.assertGone("nopivot", "/nopivot")
}

func TestSystemdCgroupPath(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = "system.slice:tent:sd1"
	})
	if res := r.run(b, nil, "--systemd-cgroup", "create", "sd1"); res.Code != 0 {
		t.Fatalf("create: %s", res)
	}
	pid := int(r.state("sd1")["pid"].(float64))
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if !strings.Contains(string(cg), "/system.slice/tent-sd1.scope") {
		t.Errorf("cgroup of a systemd-style path:\n%s", cg)
	}
	r.ok("delete", "sd1")
	r.assertGone("sd1", "/system.slice/tent-sd1.scope")
}

func TestRootfsPropagation(t *testing.T) {
	r := newRT(t)
	// The propagation flag the container's root ends up with. The default
	// (rslave) never shares the container's mounts with the host; on a host
	// whose / is private it leaves the root private.
	for _, tc := range []struct{ prop, want string }{{"", ""}, {"rprivate", ""}, {"rshared", "shared:"}} {
		out := r.runOut("prop"+tc.prop, []string{"awk", "$5 == \"/\"", "/proc/self/mountinfo"}, func(s *specs.Spec) {
			s.Linux.RootfsPropagation = tc.prop
		})
		if tc.want == "" && strings.Contains(out, "shared:") {
			t.Errorf("propagation %q: root mount %q", tc.prop, out)
		}
		if tc.want != "" && !strings.Contains(out, tc.want) {
			t.Errorf("propagation %q: root mount %q, want %s", tc.prop, out, tc.want)
		}
	}
}
