package integration

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/tent-project/tent/internal/testutil"
)

// spares are the daemon's waiting monitors: its children started as
// `monitor -`.
func (e *tentEngine) spares() []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + ent.Name() + "/cmdline")
		stat, _ := os.ReadFile("/proc/" + ent.Name() + "/stat")
		f := strings.Fields(string(stat))
		if len(f) > 3 && f[3] == strconv.Itoa(e.cmd.Process.Pid) && strings.HasSuffix(string(cmdline), "monitor\x00-\x00") {
			out = append(out, pid)
		}
	}
	return out
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
		if len(f) > 1 && f[1] == strconv.Itoa(e.cmd.Process.Pid) {
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
	for i := 0; i < 8; i++ {
		ids = append(ids, strings.TrimSpace(e.must(t, "run", "-d", "busybox", "sleep", "1000")))
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
	// Eight containers must not mean eight more threads (the Go runtime
	// keeps a handful of its own).
	if n, _ := e.children(); n < 9 || threads() >= n {
		t.Errorf("%d children, %d threads: a thread per monitor?", n, threads())
	}
	e.must(t, append([]string{"rm", "-f"}, ids...)...)
	testutil.Eventually(t, func() bool { all, zombies := e.children(); return all == 1 && zombies == 0 })
}
