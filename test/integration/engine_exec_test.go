package integration

import (
	"syscall"
	"testing"

	"github.com/tent-project/tent/internal/testutil"
)

// TestEngineExecOutlivesDaemon: an exec'd process belongs to the
// container's monitor, not to the daemon: it runs on through a kill -9 of
// the daemon, and the restarted daemon knows it, and its exit code.
func TestEngineExecOutlivesDaemon(t *testing.T) {
	e := startTent(t)
	e.must(t, "run", "-d", "--name", "host", "busybox", "sleep", "1000")
	api := func(method, path, body string, v any) int { return e.api(t, method, "/v1.45"+path, body, v) }
	var created struct{ ID string }
	if code := api("POST", "/containers/host/exec", `{"Cmd":["sh","-c","while [ ! -e /tmp/go ]; do sleep 0.1; done; exit 7"]}`, &created); code != 201 {
		t.Fatalf("exec create: %d", code)
	}
	if code := api("POST", "/exec/"+created.ID+"/start", `{"Detach":true}`, nil); code != 200 {
		t.Fatalf("exec start: %d", code)
	}
	type execInfo struct {
		Running  bool
		ExitCode *int
		Pid      int
	}
	var before execInfo
	api("GET", "/exec/"+created.ID+"/json", "", &before)
	if !before.Running || before.Pid <= 0 {
		t.Fatalf("exec before the daemon's kill: %+v", before)
	}
	e.kill9()
	if syscall.Kill(before.Pid, 0) != nil {
		t.Fatalf("the exec'd process (pid %d) died with the daemon", before.Pid)
	}
	e.start()
	var after execInfo
	if code := api("GET", "/exec/"+created.ID+"/json", "", &after); code != 200 || !after.Running || after.Pid != before.Pid {
		t.Fatalf("exec after the restart: %d %+v, want it running as pid %d", code, after, before.Pid)
	}
	e.must(t, "exec", "host", "touch", "/tmp/go")
	testutil.Eventually(t, func() bool {
		var done execInfo
		api("GET", "/exec/"+created.ID+"/json", "", &done)
		return !done.Running && done.ExitCode != nil && *done.ExitCode == 7
	})
	if _, _, code := e.runIn(nil, "exec", "host", "sh", "-c", "exit 9"); code != 9 {
		t.Errorf("an attached exec's exit status after the restart: %d, want 9", code)
	}
}
