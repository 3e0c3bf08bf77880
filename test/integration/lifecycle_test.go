package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/testutil"
)

func TestRunPassesOutputAndExitStatus(t *testing.T) {
	r := newRT(t)
	for _, tc := range []struct {
		name   string
		args   []string
		stdout string
		code   int
	}{
		{"echo", []string{"echo", "hello"}, "hello\n", 0},
		{"exit code", []string{"sh", "-c", "exit 7"}, "", 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "c-" + strings.ReplaceAll(tc.name, " ", "-")
			b := testutil.Bundle(t, tc.args, nil)
			res := r.run(b, nil, "run", id)
			if res.Code != tc.code || res.Stdout != tc.stdout {
				t.Fatalf("got %s; want exit %d stdout %q", res, tc.code, tc.stdout)
			}
			r.assertGone(id, "/"+id)
		})
	}
}

func TestRunKilledReports128PlusSignal(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sleep", "1000"}, nil)
	cmd := exec.Command(runtimeBin(), "--root", r.root, "run", "--bundle", b, "killed")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.waitStatus("killed", "running")
	r.ok("kill", "killed", "KILL")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
		t.Fatalf("run of a killed container: %v, want exit status 137", err)
	}
	r.assertGone("killed", "/killed")
}

func TestRunStdin(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sh", "-c", "read line; echo got $line"}, nil)
	res := r.run(b, strings.NewReader("tent\n"), "run", "stdin")
	if res.Code != 0 || res.Stdout != "got tent\n" {
		t.Fatalf("got %s", res)
	}
}

func TestLifecycle(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Annotations = map[string]string{"org.example.key": "value"}
	})
	pidFile := filepath.Join(t.TempDir(), "pid")
	if res := r.run(b, nil, "create", "--pid-file", pidFile, "life"); res.Code != 0 {
		t.Fatalf("create: %s", res)
	}
	st := r.state("life")
	if st["status"] != "created" || st["bundle"] != b || st["id"] != "life" {
		t.Fatalf("state after create: %v", st)
	}
	if ann, _ := st["annotations"].(map[string]any); ann["org.example.key"] != "value" {
		t.Errorf("annotations: %v", st["annotations"])
	}
	pidText, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	if pid, _ := strconv.Atoi(string(pidText)); pid != int(st["pid"].(float64)) || pid <= 0 {
		t.Fatalf("pid file %q, state pid %v", pidText, st["pid"])
	}
	// The init runs the sealed copy of the runtime until start, never the
	// binary on the host (CVE-2019-5736).
	exe, err := os.Readlink("/proc/" + string(pidText) + "/exe")
	if err != nil || !strings.HasPrefix(exe, "/memfd:") {
		t.Errorf("init's /proc/pid/exe = %q, %v; want a memfd", exe, err)
	}
	if list := r.ok("list"); !strings.Contains(list, "life") || !strings.Contains(list, "created") {
		t.Errorf("list: %s", list)
	}
	var listed []map[string]any
	if err := json.Unmarshal([]byte(r.ok("list", "--format", "json")), &listed); err != nil || len(listed) != 1 {
		t.Errorf("list json: %v %v", listed, err)
	}

	r.ok("start", "life")
	if st := r.state("life"); st["status"] != "running" {
		t.Fatalf("state after start: %v", st)
	}
	if res := r.run("", nil, "start", "life"); res.Code == 0 {
		t.Errorf("second start succeeded")
	}
	var pids []int
	if err := json.Unmarshal([]byte(r.ok("ps", "--format", "json", "life")), &pids); err != nil || len(pids) != 1 || pids[0] != int(st["pid"].(float64)) {
		t.Errorf("ps json = %v, %v", pids, err)
	}
	if table := r.ok("ps", "life"); !strings.Contains(table, "sleep 1000") || !strings.Contains(table, "PID") {
		t.Errorf("ps table: %s", table)
	}

	r.ok("pause", "life")
	if st := r.state("life"); st["status"] != "paused" {
		t.Fatalf("state after pause: %v", st)
	}
	if res := r.run("", nil, "exec", "life", "true"); res.Code == 0 {
		t.Errorf("exec into a paused container succeeded")
	}
	r.ok("resume", "life")
	r.waitStatus("life", "running")

	if res := r.run("", nil, "delete", "life"); res.Code == 0 || !strings.Contains(res.Stderr, "running") {
		t.Errorf("delete of a running container: %s", res)
	}
	r.ok("kill", "life", "KILL")
	r.waitStatus("life", "stopped")
	if st := r.state("life"); st["pid"].(float64) != 0 {
		t.Errorf("stopped container reports pid %v", st["pid"])
	}
	if res := r.run("", nil, "kill", "life"); res.Code == 0 {
		t.Errorf("kill of a stopped container succeeded")
	}
	r.ok("delete", "life")
	r.assertGone("life", "/life")
	if res := r.run("", nil, "state", "life"); res.Code == 0 {
		t.Errorf("state after delete: %s", res)
	}
}

func TestDeleteCreatedAndForce(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sleep", "1000"}, nil)
	r.ok("--log", filepath.Join(t.TempDir(), "log"), "create", "--bundle", b, "never-started")
	r.ok("delete", "never-started")
	r.assertGone("never-started", "/never-started")

	r.run(b, nil, "run", "--detach", "forced")
	r.waitStatus("forced", "running")
	r.ok("delete", "--force", "forced")
	r.assertGone("forced", "/forced")
	// Deleting what is not there is fine with --force, as with runc.
	r.ok("delete", "--force", "forced")
}

func TestKillSignals(t *testing.T) {
	r := newRT(t)
	// The shell traps USR1 and exits 42 on it.
	b := testutil.Bundle(t, []string{"sh", "-c", "trap 'exit 42' USR1; while true; do sleep 0.05; done"}, nil)
	r.ok("create", "--bundle", b, "sig")
	r.ok("start", "sig")
	r.ok("kill", "sig", "10")
	r.waitStatus("sig", "stopped")
	r.ok("delete", "sig")

	// --all reaches every process of the container, not just init.
	b2 := testutil.Bundle(t, []string{"sh", "-c", "sleep 1000 & sleep 1000 & wait"}, nil)
	r.ok("run", "-d", "--bundle", b2, "all")
	r.waitStatus("all", "running")
	r.ok("kill", "--all", "all", "SIGKILL")
	r.waitStatus("all", "stopped")
	r.ok("delete", "all")
	r.assertGone("all", "/all")
}

// A signal that comes between Start and the program's execve reaches a
// PID 1 without handlers: the program runs as if it had come a moment
// later (the kernel drops it), rather than the init dying of it with
// Go's exit status 2. Before Start, a terminating signal ends the
// container, as with runc.
func TestSignalAroundStart(t *testing.T) {
	r := newRT(t)
	// The startContainer hook runs after Start, before the execve: it
	// holds the window open for the signal.
	b := testutil.Bundle(t, []string{"sh", "-c", "echo ran"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{StartContainer: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "0.5"}}}}
	})
	out := r.create(b, "window")
	r.ok("start", "window")
	r.ok("kill", "window", "TERM")
	r.waitStatus("window", "stopped")
	if got := readAll(t, out); got != "ran\n" {
		t.Errorf("output of a program signalled before its execve: %q, want %q", got, "ran\n")
	}
	r.ok("delete", "window")

	r.create(b, "created")
	r.ok("kill", "created", "TERM")
	r.waitStatus("created", "stopped")
	if res := r.run("", nil, "start", "created"); res.Code == 0 {
		t.Errorf("start after a created container was sent TERM succeeded: %v", res)
	}
	r.ok("delete", "created")
}

func TestExec(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sleep", "1000"}, func(s *specs.Spec) {
		s.Process.Env = append(s.Process.Env, "FROM_SPEC=1")
	})
	r.ok("run", "-d", "--bundle", b, "ex")
	r.waitStatus("ex", "running")

	// In the container's namespaces: PID 1 is the container's init.
	out := r.ok("exec", "ex", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; echo $FROM_SPEC $EXTRA; pwd; id")
	want := "sleep 1000 \ntent\n1 x\n/tmp\nuid=65534(nobody) gid=65534(nogroup) groups=10\n"
	got := r.ok("exec", "--env", "EXTRA=x", "--cwd", "/tmp", "--user", "65534:65534", "--additional-gids", "10", "ex", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo; hostname; echo $FROM_SPEC $EXTRA; pwd; id")
	if got != want {
		t.Errorf("exec output:\n%s\nwant:\n%s", got, want)
	}
	if !strings.HasPrefix(out, "sleep 1000") {
		t.Errorf("exec without overrides: %q", out)
	}
	if res := r.run("", nil, "exec", "ex", "sh", "-c", "exit 5"); res.Code != 5 {
		t.Errorf("exec exit status: %s", res)
	}
	if res := r.run("", nil, "exec", "ex", "sh", "-c", "kill -9 $$"); res.Code != 137 {
		t.Errorf("exec killed by SIGKILL: %s, want 137", res)
	}
	if res := r.run("", nil, "exec", "ex", "/no/such/program"); res.Code == 0 || !strings.Contains(res.Stderr, "no such file or directory") {
		t.Errorf("exec of a missing program: %s", res)
	}
	// --process, as containerd calls it, detached with a pid file.
	proc := specs.Process{Args: []string{"sh", "-c", "echo detached > /dev/shm/out"}, Cwd: "/", Env: []string{"PATH=/bin"}}
	pf := filepath.Join(t.TempDir(), "process.json")
	data, _ := json.Marshal(proc)
	if err := os.WriteFile(pf, data, 0o644); err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(t.TempDir(), "exec.pid")
	r.ok("exec", "--process", pf, "--detach", "--pid-file", pidFile, "ex")
	if _, err := os.Stat(pidFile); err != nil {
		t.Errorf("exec --pid-file: %v", err)
	}
	testutil.Eventually(t, func() bool {
		return r.run("", nil, "exec", "ex", "cat", "/dev/shm/out").Stdout == "detached\n"
	})
	// Nothing of the runtime leaks into the process: only stdio is open.
	if fds := r.ok("exec", "ex", "ls", "/proc/self/fd"); strings.Fields(fds)[0] != "0" || len(strings.Fields(fds)) != 4 {
		t.Errorf("exec'd process has descriptors %q, want 0 1 2 and ls's own", fds)
	}
}

func TestDeleteWithoutPidNamespaceKillsOrphans(t *testing.T) {
	r := newRT(t)
	// No PID namespace: the shell's background sleep outlives the shell.
	b := testutil.Bundle(t, []string{"sh", "-c", "sleep 1000 & echo started"}, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.PIDNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	})
	r.ok("create", "--bundle", b, "orphans")
	r.ok("start", "orphans")
	r.waitStatus("orphans", "stopped")
	r.ok("delete", "orphans")
	r.assertGone("orphans", "/orphans")
}
