package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/cgroups"
)

// TestEngineAddRuntime: an OCI runtime binary given to the daemon as
// dockerd's --add-runtime or daemon.json's "runtimes" (Debian's runc)
// runs the containers that ask for it with --runtime, and everything a
// user does with them works as with tent's own runtime: output, exit
// codes, exec, terminals, top, pause, stats, update, stop, a daemon
// killed and started again; --default-runtime makes it the default.
func TestEngineAddRuntime(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (scripts/deps.sh installs it)")
	}
	e := startTent(t)
	conf := filepath.Join(e.dir, "daemon.json")
	b, _ := json.Marshal(map[string]any{"runtimes": map[string]any{"file-runc": map[string]any{"path": runc, "runtimeArgs": []string{"--log-format", "json"}}}})
	if err := os.WriteFile(conf, b, 0o600); err != nil {
		t.Fatal(err)
	}
	e.flags = []string{"--config-file", conf, "--add-runtime", "flag-runc=" + runc}
	e.stop()
	e.start()

	var rts map[string]struct {
		Path string   `json:"path"`
		Args []string `json:"runtimeArgs"`
	}
	if err := json.Unmarshal([]byte(e.must(t, "info", "--format", "{{json .Runtimes}}")), &rts); err != nil {
		t.Fatal(err)
	}
	if r := rts["file-runc"]; r.Path != runc || strings.Join(r.Args, " ") != "--log-format json" || rts["flag-runc"].Path != runc || rts["tent"].Path == "" {
		t.Errorf("info's runtimes: %+v", rts)
	}
	if d := e.must(t, "info", "--format", "{{.DefaultRuntime}}"); d != "tent\n" {
		t.Errorf("default runtime: %q", d)
	}

	// The program runs, and runc (in its state directory under the exec
	// root) knows the container.
	e.must(t, "run", "-d", "--name", "r1", "--network", "none", "--runtime", "file-runc", "busybox", "sh", "-c", "echo out; echo err >&2; sleep 1000")
	id := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "r1"))
	runcState := func(name string) string {
		out, err := exec.Command(runc, "--root", filepath.Join(e.dir, "exec", "runtimes", name), "state", id).Output()
		if err != nil {
			return "gone"
		}
		var st struct{ Status string }
		json.Unmarshal(out, &st)
		return st.Status
	}
	if st := runcState("file-runc"); st != "running" {
		t.Errorf("runc's state of the container: %s", st)
	}
	if rt := e.must(t, "inspect", "-f", "{{.HostConfig.Runtime}}", "r1"); rt != "file-runc\n" {
		t.Errorf("inspect's runtime: %q", rt)
	}
	waitLogs(t, e, "r1", "out\n", "err\n")
	if out := e.must(t, "exec", "r1", "sh", "-c", "echo in-$$"); !strings.HasPrefix(out, "in-") || out == "in-1\n" {
		t.Errorf("exec: %q", out)
	}
	if _, code := e.run("exec", "r1", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("exec's exit code: %d, want 5", code)
	}
	if out, code := e.run("exec", "r1", "nosuchprogram"); code != 127 || !strings.Contains(out, "executable file not found") {
		t.Errorf("exec of a missing program: %d %q, want 127 and the cause", code, out)
	}
	if out := e.must(t, "exec", "-t", "r1", "tty"); !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("exec -t: %q", out)
	}
	if out := e.must(t, "top", "r1"); !strings.Contains(out, "sleep 1000") {
		t.Errorf("top: %q", out)
	}
	e.must(t, "pause", "r1")
	if st := runcState("file-runc"); st != "paused" {
		t.Errorf("runc's state after pause: %s", st)
	}
	if st := e.must(t, "inspect", "-f", "{{.State.Status}}", "r1"); st != "paused\n" {
		t.Errorf("inspect after pause: %q", st)
	}
	e.must(t, "unpause", "r1")
	if out := e.must(t, "stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "r1"); out != "r1 1\n" {
		t.Errorf("stats: %q, want its one process (the shell execs sleep)", out)
	}
	e.must(t, "update", "--memory", "64m", "--memory-swap", "-1", "r1")
	if cg, err := cgroups.New(filepath.Join(engineCgroupParent, id)); err != nil {
		t.Error(err)
	} else if s, err := cg.Stats(); err != nil || s.Memory.Limit != 64<<20 {
		t.Errorf("memory limit after update: %v %v", s, err)
	}

	// The container outlives the daemon, which takes it back.
	e.kill9()
	e.start()
	if out := e.must(t, "exec", "r1", "echo", "still-here"); out != "still-here\n" {
		t.Errorf("exec after the daemon's restart: %q", out)
	}
	e.must(t, "stop", "-t", "1", "r1")
	if out := e.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "r1"); out != "exited 137\n" {
		t.Errorf("after stop: %q (the shell ignores SIGTERM as PID 1)", out)
	}
	e.must(t, "rm", "r1")
	if st := runcState("file-runc"); st != "gone" {
		t.Errorf("runc still knows a removed container: %s", st)
	}

	if out, code := e.run("run", "--rm", "--network", "none", "--runtime", "flag-runc", "busybox", "sh", "-c", "echo bye; exit 3"); code != 3 || out != "bye\n" {
		t.Errorf("run --rm: %d %q", code, out)
	}
	if out, code := e.run("run", "--rm", "--network", "none", "--runtime", "flag-runc", "busybox", "nosuchprogram"); code != 127 || !strings.Contains(out, "executable file not found") {
		t.Errorf("run of a missing program: %d %q", code, out)
	}
	if out := e.must(t, "run", "--rm", "-t", "--network", "none", "--runtime", "flag-runc", "busybox", "tty"); !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("run -t: %q", out)
	}
	// The engine wires its networks into the namespace the binary made.
	if out := e.must(t, "run", "--rm", "--runtime", "flag-runc", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"); !strings.Contains(out, "inet ") {
		t.Errorf("a container of the binary on the default bridge: %q", out)
	}
	if out, code := e.run("run", "--rm", "--runtime", "nosuch", "busybox", "true"); code != 125 || !strings.Contains(out, "unknown or invalid runtime name: nosuch") {
		t.Errorf("an unknown runtime: %d %q", code, out)
	}

	e.flags = append(e.flags, "--default-runtime", "flag-runc")
	e.stop()
	e.start()
	e.must(t, "create", "--name", "d1", "--network", "none", "busybox", "true")
	if out := e.must(t, "inspect", "-f", "{{.HostConfig.Runtime}}", "d1"); out != "flag-runc\n" {
		t.Errorf("a container of the default runtime: %q", out)
	}
	if d := e.must(t, "info", "--format", "{{.DefaultRuntime}}"); d != "flag-runc\n" {
		t.Errorf("default runtime: %q", d)
	}
}

// waitLogs waits until the container's logs are the lines want, in any
// order (stdout and stderr are two pipes).
func waitLogs(t *testing.T, e *tentEngine, name string, want ...string) {
	t.Helper()
	var got string
	for range 100 {
		got, _ = e.run("logs", name)
		lines := strings.SplitAfter(got, "\n")
		if lines[len(lines)-1] == "" {
			lines = lines[:len(lines)-1]
		}
		slices.Sort(lines)
		slices.Sort(want)
		if slices.Equal(lines, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("logs of %s: %q, want the lines %q", name, got, want)
}

// TestEngineRuntimeConfigRefused: the daemon does not start with a
// runtime it cannot have, and says why.
func TestEngineRuntimeConfigRefused(t *testing.T) {
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (scripts/deps.sh installs it)")
	}
	for _, tc := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--add-runtime", "runc=" + runc}, `runtime name "runc" is reserved`},
		{[]string{"--add-runtime", "tent=" + runc}, `runtime name "tent" is reserved`},
		{[]string{"--add-runtime", "mine=runc"}, "an absolute path is needed"},
		{[]string{"--add-runtime", "mine"}, "want NAME=PATH"},
		{[]string{"--default-runtime", "nosuch"}, "unknown or invalid runtime name: nosuch"},
	} {
		dir := t.TempDir()
		cmd := exec.Command(tentBin(), append([]string{"daemon", "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
			"-H", "unix://" + filepath.Join(dir, "s.sock")}, tc.flags...)...)
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("daemon %v: %v %q, want it refused: %q", tc.flags, err, out, tc.want)
		}
	}
}
