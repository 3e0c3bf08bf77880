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
