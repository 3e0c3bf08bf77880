package integration

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/testutil"
)

// containerd is a containerd of the test's own (root, state and sockets
// in a temporary directory), driven with ctr, whose runc shim runs
// tent-runtime in runc's place.
type containerd struct {
	t    *testing.T
	sock string
	ns   string
}

func startContainerd(t *testing.T) *containerd {
	t.Helper()
	testutil.RequiresRoot(t)
	for _, bin := range []string{"containerd", "ctr", "containerd-shim-runc-v2"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install containerd)", bin)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "tent-containerd-")
	if err != nil {
		t.Fatal(err)
	}
	c := &containerd{t: t, sock: filepath.Join(dir, "containerd.sock"), ns: "tent-test"}
	config := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = %q
[ttrpc]
  address = "%s.ttrpc"
[debug]
  address = %q
`, filepath.Join(dir, "root"), filepath.Join(dir, "state"), c.sock, c.sock, filepath.Join(dir, "debug.sock"))
	cfgPath := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "containerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("containerd", "--config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Tasks first (each has a shim), then the daemon.
		for _, id := range strings.Fields(c.out("task", "ls", "-q")) {
			c.run("task", "kill", "-s", "KILL", id)
			c.run("task", "delete", "-f", id)
		}
		for _, id := range strings.Fields(c.out("container", "ls", "-q")) {
			c.run("container", "rm", id)
		}
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("containerd log (tail):\n%s", tail(string(b), 30))
		}
		logf.Close()
		if cg, err := cgroups.New("/" + c.ns); err == nil {
			if err := cg.Destroy(); err != nil {
				t.Errorf("cgroup /%s left behind: %v", c.ns, err)
			}
		}
		os.RemoveAll(dir)
	})
	testutil.Eventually(t, func() bool {
		_, _, code := c.run("version")
		return code == 0
	})
	return c
}

// run runs ctr against this containerd and returns its output and exit status.
func (c *containerd) run(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command("ctr", append([]string{"--address", c.sock, "--namespace", c.ns}, args...)...)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("ctr %v: %v", args, err)
	}
	return out.String(), errOut.String(), code
}

func (c *containerd) out(args ...string) string {
	out, _, _ := c.run(args...)
	return out
}

func (c *containerd) must(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("ctr %v: exit %d: %s%s", args, code, out, errOut)
	}
	return out
}

// taskStatus is the STATUS column of `ctr task ls` for id.
func (c *containerd) taskStatus(id string) string {
	for _, line := range strings.Split(c.out("task", "ls"), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == id {
			return f[2]
		}
	}
	return ""
}

func TestContainerdDrivesTentRuntime(t *testing.T) {
	c := startContainerd(t)
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	testutil.BusyboxRootfs(t, rootfs)
	run := func(args ...string) []string {
		return append([]string{"run", "--runc-binary", runtimeBin(), "--rootfs"}, args...)
	}

	t.Run("run and exit status", func(t *testing.T) {
		out, errOut, code := c.run(run("--rm", rootfs, "once", "sh", "-c", "echo hello from tent-runtime; exit 3")...)
		if code != 3 || out != "hello from tent-runtime\n" {
			t.Fatalf("ctr run: exit %d, stdout %q, stderr %q; want exit 3 and the container's output", code, out, errOut)
		}
	})

	t.Run("limits, exec, pause, resume, kill", func(t *testing.T) {
		// Attached, as `ctr run` without -d: it exits with the task's status.
		attached := exec.Command("ctr", append([]string{"--address", c.sock, "--namespace", c.ns},
			run("--rm", "--memory-limit", "67108864", rootfs, "long", "sh", "-c", "echo started > /tmp/log; exec sleep 1000")...)...)
		if err := attached.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- attached.Wait() }()
		testutil.Eventually(t, func() bool { return c.taskStatus("long") == "RUNNING" })
		if got := readCgroup(t, "/"+c.ns+"/long", "memory", "memory.limit_in_bytes", "memory.max"); got != "67108864" {
			t.Errorf("memory limit of the task's cgroup: %s, want 67108864", got)
		}
		if out := c.must("task", "exec", "--exec-id", "e1", "long", "sh", "-c", "cat /tmp/log; echo pid1=$(cat /proc/1/comm)"); out != "started\npid1=sleep\n" {
			t.Errorf("task exec: %q", out)
		}
		if _, _, code := c.run("task", "exec", "--exec-id", "e2", "long", "sh", "-c", "exit 4"); code != 4 {
			t.Errorf("task exec exit status %d, want 4", code)
		}
		c.must("task", "pause", "long")
		if st := c.taskStatus("long"); st != "PAUSED" {
			t.Errorf("after pause: %s", st)
		}
		c.must("task", "resume", "long")
		if st := c.taskStatus("long"); st != "RUNNING" {
			t.Errorf("after resume: %s", st)
		}
		if ps := c.must("task", "ps", "long"); !strings.Contains(ps, "PID") || len(strings.Fields(ps)) < 3 {
			t.Errorf("task ps: %q", ps)
		}
		c.must("task", "kill", "-s", "KILL", "long")
		select {
		case err := <-done:
			// The exit status of a killed task: 128+9.
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 137 {
				t.Errorf("ctr run of a killed task: %v, want exit status 137", err)
			}
		case <-time.After(20 * time.Second):
			attached.Process.Kill()
			t.Fatal("ctr run did not end after its task was killed")
		}
	})

	t.Run("set-up error reaches ctr", func(t *testing.T) {
		_, errOut, code := c.run(run("--rm", rootfs, "bad", "nosuchprogram")...)
		if code == 0 || !strings.Contains(errOut, `exec: "nosuchprogram": executable file not found in $PATH`) {
			t.Errorf("ctr run of a missing program: exit %d, %q", code, errOut)
		}
	})

	if left := strings.Fields(c.out("task", "ls", "-q")); len(left) > 0 {
		t.Errorf("tasks left: %v", left)
	}
}
