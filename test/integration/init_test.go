package integration

import (
	"os/exec"
	"strings"
	"testing"
)

// TestEngineInit: --init runs docker-init (Debian's tini-static) as PID 1,
// which passes the exit status through and forwards stop's SIGTERM to the
// command (a bare `sleep` as PID 1 ignores it and is killed instead).
func TestEngineInit(t *testing.T) {
	if _, err := exec.LookPath("docker-init"); err != nil {
		if _, err := exec.LookPath("tini-static"); err != nil {
			t.Skip("no docker-init or tini-static (apt-get install tini)")
		}
	}
	e := startTent(t)
	ps := e.must(t, "run", "--rm", "--init", "busybox", "ps", "-o", "pid,comm")
	if !strings.Contains(ps, "    1 docker-init") {
		t.Errorf("PID 1 under --init:\n%s", ps)
	}
	if _, _, code := e.runIn(nil, "run", "--rm", "--init", "busybox", "sh", "-c", "exit 3"); code != 3 {
		t.Errorf("exit status through the init: %d, want 3", code)
	}
	if out := e.tentOK(t, "run", "--rm", "--init", "busybox", "cat", "/proc/1/comm"); out != "docker-init\n" {
		t.Errorf("tent run --init: PID 1 is %q", out)
	}
	for _, c := range []struct{ flag, want string }{{"--init", "143 true\n"}, {"--init=false", "137 false\n"}} {
		e.must(t, "run", "-d", "--name", "sleeper", c.flag, "busybox", "sleep", "1000")
		e.must(t, "stop", "-t", "2", "sleeper")
		if got := e.must(t, "inspect", "-f", "{{.State.ExitCode}} {{.HostConfig.Init}}", "sleeper"); got != c.want {
			t.Errorf("stop of a %s sleeper: exit code and Init %q, want %q", c.flag, got, c.want)
		}
		e.must(t, "rm", "sleeper")
	}
	if got := e.must(t, "info", "-f", "{{.InitBinary}}"); strings.TrimSpace(got) == "" {
		t.Errorf("info names no init binary")
	}
}
