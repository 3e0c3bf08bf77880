package integration

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/oci"
	"github.com/tent-project/tent/internal/testutil"
)

// Conformance with the OCI runtime spec where runc conforms, driven as an
// engine drives a runtime: create, start, state, delete.

// create creates id from bundle b, the container's stdout and stderr
// going to the returned file (a file, not a pipe: the container keeps
// create's stdio).
func (r *rt) create(b, id string) *os.File {
	r.t.Helper()
	out := tempFile(r.t)
	cmd := exec.Command(runtimeBin(), "--root", r.root, "create", "--bundle", b, id)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		r.t.Fatalf("create %s: %v: %s", id, err, readAll(r.t, out))
	}
	return out
}

// createStart creates and starts id from bundle b, waits until its
// program has ended and returns what it wrote.
func (r *rt) createStart(b, id string) string {
	r.t.Helper()
	out := r.create(b, id)
	if st := r.state(id); st["status"] != "created" {
		r.t.Fatalf("state after create: %v", st)
	}
	r.ok("start", id)
	r.waitStatus(id, "stopped")
	r.ok("delete", id)
	return readAll(r.t, out)
}

// withoutSyscall drops name from every rule of p, as in a profile written
// before the kernel had it.
func withoutSyscall(p *specs.LinuxSeccomp, name string) *specs.LinuxSeccomp {
	q := *p
	q.Syscalls = nil
	for _, rule := range p.Syscalls {
		rule.Names = slices.DeleteFunc(slices.Clone(rule.Names), func(n string) bool { return n == name })
		if len(rule.Names) > 0 {
			q.Syscalls = append(q.Syscalls, rule)
		}
	}
	return &q
}

// refusing is a profile that allows everything but the named calls,
// which fail with EPERM.
func refusing(names ...string) *specs.LinuxSeccomp {
	eperm := uint(1)
	return &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: names, Action: specs.ActErrno, ErrnoRet: &eperm}},
	}
}

func TestSeccompProfileWithoutCloseRange(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name    string
		profile *specs.LinuxSeccomp
		nnp     bool
	}{
		// The default profile of an engine that predates close_range:
		// the call gets the default action (EPERM).
		{"old default profile", withoutSyscall(oci.DefaultSpec(false).Linux.Seccomp, "close_range"), false},
		{"old default profile no_new_privs", withoutSyscall(oci.DefaultSpec(false).Linux.Seccomp, "close_range"), true},
		// A kernel without close_range answers ENOSYS.
		{"ENOSYS", func() *specs.LinuxSeccomp {
			p := refusing("close_range")
			enosys := uint(38)
			p.Syscalls[0].ErrnoRet = &enosys
			return p
		}(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "cr-" + strings.ReplaceAll(tc.name, " ", "-")
			b := testutil.Bundle(t, []string{"sh", "-c", "echo ran; ls /proc/self/fd"}, func(s *specs.Spec) {
				s.Linux.Seccomp = tc.profile
				s.Process.NoNewPrivileges = tc.nnp
			})
			out := r.createStart(b, id)
			if !strings.HasPrefix(out, "ran\n") {
				t.Fatalf("the container's program did not run: %q", out)
			}
			// The fallback still keeps the runtime's descriptors away
			// from the program: stdio and ls's own directory only.
			if fds := strings.Fields(strings.TrimPrefix(out, "ran\n")); len(fds) != 4 {
				t.Errorf("descriptors open in the container: %v, want 0 1 2 and ls's own", fds)
			}
		})
	}
}

func TestSetupErrorsFailCreate(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name string
		edit func(s *specs.Spec, rootfs string)
		want string
	}{
		{"cwd not accessible", func(s *specs.Spec, rootfs string) {
			if err := os.Mkdir(filepath.Join(rootfs, "private"), 0o700); err != nil {
				t.Fatal(err)
			}
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Process.Cwd = "/private"
		}, `chdir to cwd ("/private") set in config.json failed: permission denied`},
		// Without no_new_privs the filter comes before the credentials.
		{"capset refused", func(s *specs.Spec, _ string) {
			s.Process.NoNewPrivileges = false
			s.Linux.Seccomp = refusing("capset")
		}, "capset: operation not permitted"},
		{"setresuid refused", func(s *specs.Spec, _ string) {
			s.Process.NoNewPrivileges = false
			s.Process.User = specs.User{UID: 1000, GID: 1000}
			s.Linux.Seccomp = refusing("setresuid")
		}, "setuid 1000: operation not permitted"},
		{"filter cannot load", func(s *specs.Spec, _ string) {
			s.Linux.Seccomp.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_BOGUS"}
		}, `unknown flag "SECCOMP_FILTER_FLAG_BOGUS"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "err-" + strings.ReplaceAll(tc.name, " ", "-")
			marker := "/ran-" + id
			b := testutil.Bundle(t, []string{"touch", marker}, nil)
			s := readSpec(t, b)
			tc.edit(s, filepath.Join(b, "rootfs"))
			testutil.WriteSpec(t, b, s)
			res := r.run(b, nil, "create", id)
			if res.Code == 0 || !strings.Contains(res.Stderr, tc.want) {
				t.Fatalf("create: %s\nwant a failure saying %q", res, tc.want)
			}
			if list := r.ok("list", "-q"); strings.Contains(list, id) {
				t.Errorf("a failed create left container %s: %s", id, list)
			}
			if _, err := os.Stat(filepath.Join(b, "rootfs", marker)); err == nil {
				t.Errorf("the program ran although create failed")
			}
			r.assertGone(id, "/"+id)
		})
	}
}

func readSpec(t *testing.T, bundle string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func TestMountNamespaceInherited(t *testing.T) {
	r := newRT(t)
	hostMnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	b := testutil.Bundle(t, []string{"sh", "-c", "readlink /proc/self/ns/mnt; cat /marker; cat /proc/timer_list | wc -c; sleep 1000"}, func(s *specs.Spec) {
		s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(ns specs.LinuxNamespace) bool {
			return ns.Type == specs.MountNamespace
		})
		s.Root.Readonly = true
	})
	rootfs := filepath.Join(b, "rootfs")
	if err := os.WriteFile(filepath.Join(rootfs, "marker"), []byte("in the rootfs\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := r.create(b, "inherit")
	r.ok("start", "inherit")
	testutil.Eventually(t, func() bool { return strings.Count(readAll(t, out), "\n") >= 3 })
	lines := strings.Split(readAll(t, out), "\n")
	if lines[0] != hostMnt {
		t.Errorf("mount namespace %q, want the runtime's %q", lines[0], hostMnt)
	}
	if lines[1] != "in the rootfs" {
		t.Errorf("root: /marker = %q, want the bundle's rootfs", lines[1])
	}
	if lines[2] != "0" {
		t.Errorf("masked /proc/timer_list has %s bytes, want 0", lines[2])
	}
	// exec lands in the container's root too, read-only as its init's.
	res := r.run("", nil, "exec", "inherit", "sh", "-c", "cat /marker; touch /new 2>/dev/null || echo read-only")
	if res.Code != 0 || res.Stdout != "in the rootfs\nread-only\n" {
		t.Errorf("exec: %s", res)
	}
	if !mountedUnder(t, rootfs) {
		t.Errorf("no mounts under %s while the container runs", rootfs)
	}
	r.ok("delete", "--force", "inherit")
	if mountedUnder(t, rootfs) {
		t.Errorf("mounts left under %s after delete", rootfs)
	}
}

// mountedUnder reports whether this mount namespace has a mount at or
// below dir.
func mountedUnder(t *testing.T, dir string) bool {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			return true
		}
	}
	return false
}

func TestMountNamespaceJoinedByPath(t *testing.T) {
	r := newRT(t)
	// A mount namespace of the test's own, where dir holds a tmpfs with a
	// file the runtime's namespace cannot see.
	dir := t.TempDir()
	holder := exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		fmt.Sprintf("mount -t tmpfs tmpfs %s && echo joined > %s/f && echo ready && exec sleep 1000", dir, dir))
	stdout, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	buf := make([]byte, 6)
	if n, err := stdout.Read(buf); err != nil || string(buf[:n]) != "ready\n" {
		t.Fatalf("namespace holder: %q %v", buf[:n], err)
	}
	nsPath := fmt.Sprintf("/proc/%d/ns/mnt", holder.Process.Pid)
	want, _ := os.Readlink(nsPath)
	b := testutil.Bundle(t, []string{"sh", "-c", "readlink /proc/self/ns/mnt; cat /mnt/f"}, func(s *specs.Spec) {
		for i, ns := range s.Linux.Namespaces {
			if ns.Type == specs.MountNamespace {
				s.Linux.Namespaces[i].Path = nsPath
			}
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: dir, Options: []string{"rbind", "ro"}})
	})
	out := r.createStart(b, "joinmnt")
	if got := strings.Split(out, "\n"); len(got) < 2 || got[0] != want || got[1] != "joined" {
		t.Fatalf("output %q, want the joined namespace %s and its file", out, want)
	}
}

func TestUnsupportedSecurityFieldsRefused(t *testing.T) {
	r := newRT(t)
	if b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled"); err == nil && strings.HasPrefix(string(b), "Y") {
		t.Skip("AppArmor is enabled on this host: profiles can be applied")
	}
	if _, err := os.Stat("/sys/fs/selinux/enforce"); err == nil {
		t.Skip("SELinux is enabled on this host")
	}
	for _, tc := range []struct {
		name string
		edit func(*specs.Spec)
		want string
	}{
		{"apparmor", func(s *specs.Spec) { s.Process.ApparmorProfile = "docker-default" }, "apparmor is disabled or not supported"},
		{"selinux process label", func(s *specs.Spec) { s.Process.SelinuxLabel = "system_u:system_r:container_t:s0" }, "selinux is disabled or not supported"},
		{"mount label", func(s *specs.Spec) { s.Linux.MountLabel = "system_u:object_r:container_file_t:s0" }, "selinux is disabled or not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "lsm-" + strings.ReplaceAll(tc.name, " ", "-")
			b := testutil.Bundle(t, []string{"true"}, tc.edit)
			if res := r.run(b, nil, "create", id); res.Code == 0 || !strings.Contains(res.Stderr, tc.want) {
				t.Fatalf("create: %s\nwant a refusal saying %q", res, tc.want)
			}
			r.assertGone(id, "/"+id)
		})
	}
}

func TestKernelMemoryLimits(t *testing.T) {
	r := newRT(t)
	cgPath := "/tent-test/kmem"
	t.Cleanup(func() {
		if parent, err := cgroups.New("/tent-test"); err == nil {
			_ = parent.Destroy()
		}
	})
	b := testutil.Bundle(t, []string{"echo", "ran"}, func(s *specs.Spec) {
		s.Linux.CgroupsPath = cgPath
		s.Linux.Resources.Memory = &specs.LinuxMemory{KernelTCP: i64(16 << 20)}
	})
	if cgroups.Unified() {
		// cgroup v2 has no such limit: refused, never ignored.
		if res := r.run(b, nil, "create", "kmem"); res.Code == 0 || !strings.Contains(res.Stderr, "kernelTCP") {
			t.Fatalf("create with kernelTCP on cgroup v2: %s", res)
		}
		return
	}
	out := r.create(b, "kmem")
	if got := readCgroup(t, cgPath, "memory", "memory.kmem.tcp.limit_in_bytes", ""); got != "16777216" {
		t.Errorf("memory.kmem.tcp.limit_in_bytes = %s, want 16777216", got)
	}
	r.ok("start", "kmem")
	r.waitStatus("kmem", "stopped")
	r.ok("delete", "kmem")
	if got := readAll(t, out); got != "ran\n" {
		t.Errorf("the container's program: %q", got)
	}
}

func TestProcessSchedulingAndPersonality(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sh", "-c", "uname -m; ionice; cut -d' ' -f19,41 /proc/self/stat; sleep 1000"}, func(s *specs.Spec) {
		s.Linux.Personality = &specs.LinuxPersonality{Domain: specs.PerLinux32}
		s.Process.Scheduler = &specs.Scheduler{Policy: specs.SchedBatch, Nice: 7}
		s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 6}
	})
	out := r.create(b, "attrs")
	r.ok("start", "attrs")
	testutil.Eventually(t, func() bool { return strings.Count(readAll(t, out), "\n") >= 3 })
	// Nice 7 and policy 3 (SCHED_BATCH) are fields 19 and 41 of stat.
	if got, want := readAll(t, out), "i686\nbest-effort: prio 6\n7 3\n"; got != want {
		t.Errorf("personality, I/O priority, scheduler seen inside: %q, want %q", got, want)
	}
	proc := filepath.Join(t.TempDir(), "process.json")
	b2, _ := json.Marshal(specs.Process{Args: []string{"sh", "-c", "taskset -p $$"}, Cwd: "/",
		ExecCPUAffinity: &specs.CPUAffinity{Final: "0"}})
	if err := os.WriteFile(proc, b2, 0o644); err != nil {
		t.Fatal(err)
	}
	if res := r.run("", nil, "exec", "--process", proc, "attrs"); res.Code != 0 || !strings.HasSuffix(res.Stdout, "current affinity mask: 1\n") {
		t.Errorf("exec with execCPUAffinity: %s", res)
	}
	for _, bad := range []func(*specs.Spec){
		func(s *specs.Spec) { s.Process.Scheduler = &specs.Scheduler{Policy: "SCHED_NOPE"} },
		func(s *specs.Spec) {
			s.Process.IOPriority = &specs.LinuxIOPriority{Class: specs.IOPRIO_CLASS_BE, Priority: 9}
		},
		func(s *specs.Spec) { s.Linux.Personality = &specs.LinuxPersonality{Domain: "BSD"} },
		func(s *specs.Spec) { s.Linux.TimeOffsets = map[string]specs.LinuxTimeOffset{"monotonic": {Secs: 10}} },
		func(s *specs.Spec) { s.Linux.IntelRdt = &specs.LinuxIntelRdt{ClosID: "x"} },
	} {
		b := testutil.Bundle(t, []string{"true"}, bad)
		if res := r.run(b, nil, "create", "bad-attrs"); res.Code == 0 || res.Stderr == "" {
			t.Errorf("create with an attribute tent-runtime cannot apply: %s", res)
			r.run("", nil, "delete", "--force", "bad-attrs")
		}
	}
}
