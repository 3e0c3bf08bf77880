package integration

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tent-project/tent/internal/testutil"
	"github.com/tent-project/tent/internal/vm"
)

// childProcs lists the children of ppid whose command line (arguments
// NUL-terminated) satisfies match.
func childProcs(ppid int, match func(cmdline string) bool) []int {
	return procs(func(pid int, cmdline string) bool {
		f := procStat(pid)
		return len(f) > 1 && f[1] == strconv.Itoa(ppid) && match(cmdline)
	})
}

// procs lists the processes for which match holds.
func procs(match func(pid int, cmdline string) bool) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if match(pid, string(cmdline)) {
			out = append(out, pid)
		}
	}
	return out
}

// spares are the daemon's waiting monitors: its children started as
// `monitor -`.
func (e *tentEngine) spares() []int {
	return childProcs(e.cmd.Process.Pid, func(c string) bool { return strings.HasSuffix(c, "monitor\x00-\x00") })
}

// TestEngineSpareMonitor: the daemon keeps one monitor started ahead of
// the next container; a spare that dies is replaced and the start does
// not fail; the spare goes with the daemon, even after kill -9.
func TestEngineSpareMonitor(t *testing.T) {
	e := startTent(t)
	testutil.Eventually(t, func() bool { return len(e.spares()) == 1 })
	first := e.spares()[0]
	if out := e.must(t, "run", "--rm", "busybox", "echo", "one"); out != "one\n" {
		t.Fatalf("run: %q", out)
	}
	testutil.Eventually(t, func() bool { s := e.spares(); return len(s) == 1 && s[0] != first })
	syscall.Kill(e.spares()[0], syscall.SIGKILL)
	if out := e.must(t, "run", "--rm", "busybox", "echo", "two"); out != "two\n" {
		t.Fatalf("run after the spare died: %q", out)
	}
	testutil.Eventually(t, func() bool { return len(e.spares()) == 1 })
	spare := e.spares()[0]
	e.kill9()
	testutil.Eventually(t, func() bool { return syscall.Kill(spare, 0) != nil })
	e.start()
}

// procStat is the fields of /proc/PID/stat after the command name.
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
}

// schedPolicy is a process's scheduling policy (0 normal, 5 SCHED_IDLE).
func schedPolicy(pid int) string {
	if f := procStat(pid); len(f) > 38 {
		return f[38] // field 41 of stat, counted from the state (3)
	}
	return "?"
}

// prestarted is the init a spare keeps ready: its child running as
// `tent-runtime prestarted`, or 0.
func prestarted(spare int) int {
	if p := childProcs(spare, func(c string) bool { return c == "tent-runtime\x00prestarted\x00" }); len(p) > 0 {
		return p[0]
	}
	return 0
}

// TestEnginePrestartedInit: a spare monitor keeps a container init
// started (new PID, network, IPC and UTS namespaces), both in the idle
// scheduling class. A container made from it is what a fresh init makes:
// its own namespaces and root, stdio wired, the normal scheduling class,
// exit statuses exact however fast it ends; a container whose namespaces
// differ (host network) gets a fresh init.
func TestEnginePrestartedInit(t *testing.T) {
	e := startTent(t)
	var spare, init int
	testutil.Eventually(t, func() bool {
		if s := e.spares(); len(s) == 1 {
			spare, init = s[0], prestarted(s[0])
		}
		return init != 0
	})
	if p, q := schedPolicy(spare), schedPolicy(init); p != "5" || q != "5" {
		t.Errorf("spare and its init: scheduling policies %s and %s, want 5 (SCHED_IDLE)", p, q)
	}
	for _, ns := range []string{"pid", "net", "ipc", "uts"} {
		mine, _ := os.Readlink("/proc/self/ns/" + ns)
		its, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", init, ns))
		if its == "" || its == mine {
			t.Errorf("prestarted init: %s namespace %q, host's %q", ns, its, mine)
		}
	}
	// One container from it: PID 1, its hostname, eth0 on the default
	// bridge (wired into the prestarted namespace) and lo (up, with
	// 127.0.0.1 serving), the normal scheduling class, a root of its own.
	out := e.must(t, "run", "--rm", "busybox", "sh", "-c",
		`echo $$; hostname; ls /sys/class/net; cut -d" " -f41 /proc/self/stat; ls /bin/busybox; `+
			`(nc -l -p 8080 -e echo local &); sleep 0.2; nc 127.0.0.1 8080`)
	if f := strings.Fields(out); len(f) != 7 || f[0] != "1" || len(f[1]) != 12 || f[2] != "eth0" || f[3] != "lo" || f[4] != "0" || f[5] != "/bin/busybox" || f[6] != "local" {
		t.Errorf("container from a prestarted init: %q", out)
	}
	if syscall.Kill(init, 0) == nil {
		t.Errorf("the prestarted init %d is still there after its container ended", init)
	}
	testutil.Eventually(t, func() bool {
		s := e.spares()
		return len(s) == 1 && s[0] != spare && prestarted(s[0]) != 0
	})
	if out, _, code := e.runIn(strings.NewReader("through stdin\n"), "run", "--rm", "-i", "busybox", "cat"); out != "through stdin\n" || code != 0 {
		t.Errorf("run -i: %q, exit %d", out, code)
	}
	// Host networking does not fit a prestarted init. (The host ends of
	// the veths of containers that just ended go as their namespaces are
	// torn down, asynchronously: they are left out of the comparison.)
	withoutVeths := func(names []string) string {
		var out []string
		for _, n := range names {
			if !strings.HasPrefix(n, "veth") {
				out = append(out, n)
			}
		}
		return strings.Join(out, " ")
	}
	host, _ := os.ReadDir("/sys/class/net")
	var names []string
	for _, h := range host {
		names = append(names, h.Name())
	}
	if out := e.must(t, "run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net"); withoutVeths(strings.Fields(out)) != withoutVeths(names) {
		t.Errorf("--network host sees %q, the host has %q", out, names)
	}
	// Containers that end at once: all their output and every status
	// arrive (the attachment and the daemon's wait are in place at the
	// monitor before the start).
	for i := range 20 {
		out, errOut, code := e.runIn(nil, "run", "--rm", "busybox", "sh", "-c", fmt.Sprintf("echo out%d; echo err%d >&2; exit %d", i, i, i))
		if want := fmt.Sprintf("out%d\n", i); out != want || code != i || !strings.Contains(errOut, fmt.Sprintf("err%d\n", i)) {
			t.Errorf("run --rm, echo and exit %d: %q %q status %d", i, out, errOut, code)
		}
	}
	// A spare killed with its init: the init goes too.
	testutil.Eventually(t, func() bool { s := e.spares(); return len(s) == 1 && prestarted(s[0]) != 0 })
	spare = e.spares()[0]
	init = prestarted(spare)
	syscall.Kill(spare, syscall.SIGKILL)
	testutil.Eventually(t, func() bool {
		return syscall.Kill(init, 0) != nil || strings.HasPrefix(strings.Join(procStat(init), " "), "Z")
	})
}

// TestEngineAutoRemoveLayerVolatile: the writable layer of a --rm
// container is mounted volatile (nothing syncs a layer about to be
// deleted); other containers' layers are not.
func TestEngineAutoRemoveLayerVolatile(t *testing.T) {
	e := startTent(t)
	rm := strings.TrimSpace(e.must(t, "run", "-d", "--rm", "busybox", "sleep", "60"))
	kept := strings.TrimSpace(e.must(t, "run", "-d", "busybox", "sleep", "60"))
	for id, want := range map[string]bool{rm: true, kept: false} {
		pid, _ := strconv.Atoi(strings.TrimSpace(e.must(t, "inspect", "-f", "{{.State.Pid}}", id)))
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
		if err != nil {
			t.Fatal(err)
		}
		root := strings.SplitN(string(b), "\n", 2)[0]
		if got := strings.Contains(root, "volatile"); got != want {
			t.Errorf("container %.12s (--rm %v): root mount %q", id, want, root)
		}
	}
	e.must(t, "rm", "-f", rm, kept)
}

// children lists the daemon's child processes by state ("Z": zombie).
func (e *tentEngine) children() (all, zombies int) {
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		stat, err := os.ReadFile("/proc/" + ent.Name() + "/stat")
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		// The daemon's KVM probe (a QEMU for up to 15 s after its start,
		// docs/vm.md) is not a monitor.
		cmdline, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		if len(f) > 1 && f[1] == strconv.Itoa(e.cmd.Process.Pid) && !strings.Contains(string(cmdline), vm.ProbeArg) {
			all++
			if f[0] == "Z" {
				zombies++
			}
		}
	}
	return all, zombies
}

// TestEngineMonitorsReaped: monitors are the daemon's children; when
// their containers end they are reaped (no zombies), and waiting for them
// holds no thread per container.
func TestEngineMonitorsReaped(t *testing.T) {
	e := startTent(t)
	var ids []string
	start := func(n int) {
		for range n {
			ids = append(ids, strings.TrimSpace(e.must(t, "run", "-d", "busybox", "sleep", "1000")))
		}
	}
	threads := func() int {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(e.cmd.Process.Pid) + "/status")
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Threads:"); ok {
				n, _ := strconv.Atoi(strings.TrimSpace(v))
				return n
			}
		}
		return 0
	}
	// Eight more containers must not mean eight more threads (the Go
	// runtime keeps a handful of its own, and makes some for system calls
	// that block, such as the fsyncs of parallel writes).
	start(8)
	before := threads()
	start(8)
	if n, _ := e.children(); n < 17 || threads() >= before+6 {
		t.Errorf("%d children, threads %d with 8 containers and %d with 16: a thread per monitor?", n, before, threads())
	}
	e.must(t, append([]string{"rm", "-f"}, ids...)...)
	testutil.Eventually(t, func() bool { all, zombies := e.children(); return all == 1 && zombies == 0 })
}
