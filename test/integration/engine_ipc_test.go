package integration

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/testutil"
)

// TestEngineSharedNamespaces: --pid, --ipc and --uts as docker's, through
// the docker CLI: the host's PID, UTS and IPC namespaces (and the host's
// /dev/shm), another container's PID namespace, no /dev/shm with --ipc
// none, and bad modes refused at create.
func TestEngineSharedNamespaces(t *testing.T) {
	e := startTent(t)
	hostPid, _ := os.Readlink("/proc/self/ns/pid")
	hostIPC, _ := os.Readlink("/proc/self/ns/ipc")
	hostUTS, _ := os.Readlink("/proc/self/ns/uts")
	hostname, _ := os.Hostname()
	out := e.must(t, "run", "--rm", "--pid", "host", "--ipc", "host", "--uts", "host", "busybox", "sh", "-c",
		"for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname")
	if want := strings.Join([]string{hostPid, hostIPC, hostUTS, hostname}, "\n") + "\n"; out != want {
		t.Errorf("host namespaces: %q, want %q", out, want)
	}
	if out := e.must(t, "run", "--rm", "busybox", "sh", "-c", "echo $$; readlink /proc/self/ns/pid"); strings.Contains(out, hostPid) || !strings.HasPrefix(out, "1\n") {
		t.Errorf("default: %q", out)
	}
	e.must(t, "run", "-d", "--name", "donor", "busybox", "sleep", "600")
	donorPid := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.State.Pid}}", "donor"))
	want, _ := os.Readlink("/proc/" + donorPid + "/ns/pid")
	if out := e.must(t, "run", "--rm", "--pid", "container:donor", "busybox", "sh", "-c", "readlink /proc/self/ns/pid; pidof sleep"); out != want+"\n1\n" {
		t.Errorf("--pid container:donor: %q, want its namespace %s with its sleep as 1", out, want)
	}
	if out, _, code := e.runIn(nil, "run", "--rm", "--ipc", "none", "busybox", "ls", "/dev/shm"); code == 0 {
		t.Errorf("--ipc none has a /dev/shm: %q", out)
	}
	for _, bad := range [][]string{{"--pid", "bogus"}, {"--uts", "container:donor"}, {"--ipc", "nonsense"}} {
		if _, errOut, code := e.runIn(nil, append(append([]string{"create"}, bad...), "busybox")...); code == 0 || !strings.Contains(errOut, "invalid") {
			t.Errorf("create %v: exit %d %q", bad, code, errOut)
		}
	}
	e.must(t, "rm", "-f", "donor")
	if _, _, code := e.runIn(nil, "run", "--rm", "--pid", "container:donor", "busybox", "true"); code == 0 {
		t.Errorf("--pid of a removed container worked")
	}
}

// TestEngineShareableIPC: --ipc shareable and --ipc container:NAME as
// dockerd has them: the joiner is in the donor's IPC namespace and sees
// its /dev/shm; a private donor or a stopped one is refused with
// dockerd's words; the donor's /dev/shm goes when it stops.
func TestEngineShareableIPC(t *testing.T) {
	_, e, engines, images := startPair(t)
	for name, en := range engines {
		en.must(t, "run", "-d", "--name", "donor", "--network", "none", "--ipc", "shareable", "--shm-size", "8m", images[name], "sh", "-c",
			"echo shared > /dev/shm/x; exec sleep 1000")
		en.must(t, "run", "-d", "--name", "private", "--network", "none", images[name], "sleep", "1000")
		waitFile(t, en, "donor", "/dev/shm/x")
		donorNS := strings.TrimSpace(en.must(t, "exec", "donor", "readlink", "/proc/self/ns/ipc"))
		out := en.must(t, "run", "--rm", "--network", "none", "--ipc", "container:donor", images[name], "sh", "-c",
			"readlink /proc/self/ns/ipc; cat /dev/shm/x; echo back > /dev/shm/y; df -k /dev/shm | tail -1 | awk '{print $2}'")
		if want := donorNS + "\nshared\n8192\n"; out != want {
			t.Errorf("%s: --ipc container:donor: %q, want %q", name, out, want)
		}
		if got := en.must(t, "exec", "donor", "cat", "/dev/shm/y"); got != "back\n" {
			t.Errorf("%s: the donor sees the joiner's file: %q", name, got)
		}
		if _, errOut, code := en.runIn(nil, "run", "--rm", "--network", "none", "--ipc", "container:private", images[name], "true"); code == 0 ||
			!strings.Contains(errOut, "non-shareable IPC") {
			t.Errorf("%s: joining a private donor: %d %s", name, code, errOut)
		}
		en.must(t, "stop", "-t", "1", "donor")
		if _, errOut, code := en.runIn(nil, "run", "--rm", "--network", "none", "--ipc", "container:donor", images[name], "true"); code == 0 ||
			!strings.Contains(errOut, "is not running") {
			t.Errorf("%s: joining a stopped donor: %d %s", name, code, errOut)
		}
	}
	id := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "donor"))
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), filepath.Join(e.dir, "exec", "containers", id, "shm")+" ") {
		t.Error("the stopped donor's /dev/shm is still mounted")
	}
}

// rebootHost does to e what a reboot does: the daemon, every monitor and
// every container process die at once, the mounts go, and the exec root
// (a tmpfs such as /run) comes back empty; the data root stays.
func (e *tentEngine) rebootHost(t *testing.T) {
	t.Helper()
	e.kill9()
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == os.Getpid() { // the test holds the daemon's log open
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); strings.HasPrefix(l, e.dir) {
				pids = append(pids, pid) // a monitor (or a spare) of this daemon's
				break
			}
		}
	}
	if cg, err := cgroups.New(engineCgroupParent); err == nil {
		filepath.WalkDir(cg.Dir("pids"), func(p string, de fs.DirEntry, err error) error {
			if err == nil && de.Name() == "cgroup.procs" {
				b, _ := os.ReadFile(p)
				for _, f := range strings.Fields(string(b)) {
					pid, _ := strconv.Atoi(f)
					pids = append(pids, pid)
				}
			}
			return nil
		})
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	testutil.Eventually(t, func() bool {
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				return false
			}
		}
		return true
	})
	// The containers' cgroups go with the host's cgroup file systems.
	if hs, err := cgroups.V1Hierarchies(); err == nil && !cgroups.Unified() {
		for _, h := range hs {
			removeCgroupsBelow(filepath.Join(h.Mount, engineCgroupParent))
		}
	} else if cg, err := cgroups.New(engineCgroupParent); err == nil {
		removeCgroupsBelow(cg.Dir(""))
	}
	execRoot := filepath.Join(e.dir, "exec")
	mounts := mountsUnder(execRoot)
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
	if err := os.RemoveAll(execRoot); err != nil {
		t.Fatal(err)
	}
}

// removeCgroupsBelow removes the (empty) cgroups under dir, deepest first.
func removeCgroupsBelow(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.IsDir() && p != dir {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		syscall.Rmdir(dirs[i])
	}
}
