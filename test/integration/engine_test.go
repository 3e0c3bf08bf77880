package integration

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/testutil"
	"golang.org/x/sys/unix"
)

// engineCgroupParent keeps the test daemon's containers apart.
const engineCgroupParent = "/tent-engine-test"

// tentEngine is a tent daemon of the test's own (data root, exec root and
// socket in a temporary directory), driven with the real docker CLI.
type tentEngine struct {
	dockerEngine
	dir      string
	cmd      *exec.Cmd
	waitExit chan struct{}
	logf     *os.File
	// links are the host's network interfaces before the daemon started
	// (checkNetworksGone looks for new ones).
	links map[string]bool
	// flags are more of the daemon's, for its next start.
	flags []string
}

func tentBin() string { return filepath.Join(binDir, "tent") }

func startTent(t *testing.T) *tentEngine {
	t.Helper()
	testutil.RequiresRoot(t)
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("docker CLI not installed (apt-get install docker.io)")
	}
	dir, err := os.MkdirTemp("/tmp", "tent-engine-")
	if err != nil {
		t.Fatal(err)
	}
	e := &tentEngine{dockerEngine: dockerEngine{t: t, host: "unix://" + filepath.Join(dir, "tent.sock")}, dir: dir}
	if e.logf, err = os.Create(filepath.Join(dir, "daemon.log")); err != nil {
		t.Fatal(err)
	}
	e.links = linkNames()
	e.start()
	t.Cleanup(func() {
		if ids := strings.Fields(e.out("ps", "-aq")); len(ids) > 0 {
			e.run(append([]string{"rm", "-f"}, ids...)...)
		}
		e.run("network", "prune", "-f")
		e.stop()
		e.checkNothingRunsFor(t)
		e.checkNetworksGone(t)
		if err := testutil.RemoveCgroupParent(engineCgroupParent); err != nil {
			t.Errorf("cgroup parent left behind: %v", err)
		}
		if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(dir)) {
			t.Errorf("mounts left under %s", dir)
		}
		if t.Failed() {
			b, _ := os.ReadFile(e.logf.Name())
			t.Logf("daemon log (tail):\n%s", tail(string(b), 40))
		}
		e.logf.Close()
		os.RemoveAll(dir)
	})
	e.importBusybox(t, "busybox:latest")
	return e
}

// start runs the daemon and waits until it answers.
func (e *tentEngine) start() {
	e.t.Helper()
	e.cmd = exec.Command(tentBin(), "daemon", "--data-root", filepath.Join(e.dir, "data"),
		"--exec-root", filepath.Join(e.dir, "exec"), "-H", e.host, "--cgroup-parent", engineCgroupParent,
		"--bridge", testBridge)
	e.cmd.Args = append(e.cmd.Args, e.flags...)
	e.cmd.Stdout, e.cmd.Stderr = e.logf, e.logf
	if err := e.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { e.cmd.Wait(); close(exited) }()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if resp, err := e.http().Get("http://tent/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				e.waitExit = exited
				return
			}
		}
		select {
		case <-exited:
			b, _ := os.ReadFile(e.logf.Name())
			e.t.Fatalf("tent daemon exited: %s", tail(string(b), 20))
		default:
		}
		if time.Now().After(deadline) {
			e.t.Fatal("tent daemon did not answer within 20s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the daemon with SIGTERM, as a service manager would.
func (e *tentEngine) stop() {
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.waitExit:
	case <-time.After(20 * time.Second):
		e.cmd.Process.Kill()
		<-e.waitExit
		e.t.Error("tent daemon ignored SIGTERM for 20s")
	}
}

// checkNothingRunsFor fails the test if a process that names the
// daemon's directory (a QEMU of its, say) outlives the daemon and its
// containers, and ends it: one such left running by every test would
// slow all the tests after it.
func (e *tentEngine) checkNothingRunsFor(t *testing.T) {
	left := func() []int {
		return procs(func(_ int, cmdline string) bool { return strings.Contains(cmdline, e.dir+"/") })
	}
	for deadline := time.Now().Add(3 * time.Second); len(left()) > 0 && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	for _, pid := range left() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		t.Errorf("process %d outlived the daemon: %s", pid, bytes.ReplaceAll(cmdline, []byte{0}, []byte{' '}))
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// kill9 kills the daemon the hard way.
func (e *tentEngine) kill9() {
	e.cmd.Process.Kill()
	<-e.waitExit
}

// http is a client on the daemon's socket, for raw API requests.
func (e *tentEngine) http() *http.Client {
	sock := strings.TrimPrefix(e.host, "unix://")
	return &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
}

func (e *tentEngine) importBusybox(t *testing.T, name string) {
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	testutil.BusyboxRootfs(t, rootfs)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	e.must(t, "import", "--change", `CMD ["sh"]`, tarball, name)
}

// runIn runs docker with stdin from in and returns stdout, stderr, status.

// capture runs cmd with stdin from in and returns its output and status.
func capture(t *testing.T, cmd *exec.Cmd, in io.Reader) (string, string, int) {
	var stdout, stderr bytes.Buffer
	cmd.Stdin, cmd.Stdout, cmd.Stderr = in, &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%v: %v", cmd.Args, err)
	}
	return stdout.String(), stderr.String(), code
}

func TestEngineDockerRun(t *testing.T) {
	e := startTent(t)
	t.Run("output and exit status", func(t *testing.T) {
		out, errOut, code := e.runIn(nil, "run", "--rm", "busybox", "sh", "-c", "echo out; echo err >&2; exit 3")
		if out != "out\n" || errOut != "err\n" || code != 3 {
			t.Errorf("got stdout %q stderr %q exit %d; want out, err, 3", out, errOut, code)
		}
	})
	t.Run("engine and exec errors", func(t *testing.T) {
		_, errOut, code := e.runIn(nil, "run", "--rm", "busybox", "nosuch")
		if code != 127 || !strings.Contains(errOut, "executable file not found") {
			t.Errorf("missing command: exit %d, %q; want 127", code, errOut)
		}
		_, errOut, code = e.runIn(nil, "run", "--rm", "busybox", "/etc/passwd")
		if code != 126 || !strings.Contains(errOut, "permission denied") {
			t.Errorf("not executable: exit %d, %q; want 126", code, errOut)
		}
		// Errors of the container's set-up (here the working directory,
		// reached after the switch to the user) come with their cause.
		_, errOut, code = e.runIn(nil, "run", "--rm", "--tmpfs", "/private:mode=0700", "--cap-drop", "DAC_OVERRIDE", "-u", "1000", "-w", "/private", "busybox", "true")
		if code != 126 || !strings.Contains(errOut, `chdir to cwd ("/private") set in config.json failed: permission denied`) {
			t.Errorf("inaccessible working directory: exit %d, %q; want 126 with the cause", code, errOut)
		}
		_, errOut, code = e.runIn(nil, "run", "--rm", "--security-opt", "seccomp="+refusingProfile(t, "setresuid"), "-u", "1000", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, "setuid 1000: operation not permitted") {
			t.Errorf("seccomp profile refusing setresuid: exit %d, %q; want 125 with the cause", code, errOut)
		}
		_, errOut, code = e.runIn(nil, "run", "--rm", "nosuchimage")
		if code != 125 || !strings.Contains(errOut, "nosuchimage") {
			t.Errorf("unknown image: exit %d, %q; want 125", code, errOut)
		}
		if ps := e.must(t, "ps", "-aq"); ps != "" {
			t.Errorf("--rm left containers: %q", ps)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		out, _, code := e.runIn(strings.NewReader("line1\nline2\n"), "run", "--rm", "-i", "busybox", "wc", "-l")
		if strings.TrimSpace(out) != "2" || code != 0 {
			t.Errorf("run -i: %q exit %d", out, code)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		master, slave := openPty(t)
		defer master.Close()
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 33, Col: 111}); err != nil {
			t.Fatal(err)
		}
		cmd := e.command("run", "--rm", "-it", "busybox", "sh")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		go io.WriteString(master, "tty; echo size=$(stty size); exit 5\n")
		out := readUntil(t, master, "size=33 111")
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
			t.Errorf("run -it: %v, want exit 5 (output %q)", err, out)
		}
		if !strings.Contains(out, "/dev/pts/0") {
			t.Errorf("no terminal in the container: %q", out)
		}
	})
	t.Run("options", func(t *testing.T) {
		out := e.must(t, "run", "--rm", "-e", "A=1", "--env", "B=two", "-w", "/tmp", "-u", "nobody",
			"--hostname", "box", "-l", "k=v", "busybox", "sh", "-c", "echo $A $B $(pwd) $(id -u) $(hostname)")
		if out != "1 two /tmp 65534 box\n" {
			t.Errorf("options: %q", out)
		}
		out = e.must(t, "run", "--rm", "--entrypoint", "echo", "busybox", "via", "entrypoint")
		if out != "via entrypoint\n" {
			t.Errorf("--entrypoint: %q", out)
		}
		out = e.must(t, "run", "--rm", "--memory", "64m", "--pids-limit", "50", "busybox", "sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max")
		if f := strings.Fields(out); len(f) != 2 || f[0] != "67108864" || f[1] != "50" {
			t.Errorf("limits seen inside: %q", out)
		}
		_, errOut, code := e.runIn(nil, "run", "--rm", "--read-only", "busybox", "touch", "/x")
		if code == 0 || !strings.Contains(errOut, "Read-only file system") {
			t.Errorf("--read-only: exit %d %q", code, errOut)
		}
		out = e.must(t, "run", "--rm", "--cap-drop", "ALL", "busybox", "sh", "-c", "grep CapEff /proc/self/status")
		if !strings.Contains(out, "0000000000000000") {
			t.Errorf("--cap-drop ALL: %q", out)
		}
		out = e.must(t, "run", "--rm", "--tmpfs", "/scratch", "busybox", "sh", "-c", "grep /scratch /proc/mounts")
		if !strings.Contains(out, "tmpfs") {
			t.Errorf("--tmpfs: %q", out)
		}
	})
	t.Run("name in use", func(t *testing.T) {
		e.must(t, "create", "--name", "taken", "busybox", "true")
		_, errOut, code := e.runIn(nil, "run", "--name", "taken", "busybox", "true")
		if code != 125 || !strings.Contains(errOut, `The container name "/taken" is already in use`) {
			t.Errorf("duplicate name: exit %d %q", code, errOut)
		}
		e.must(t, "rm", "taken")
	})
}

// TestEngineLogsFollowUntil: `logs -f --until` stops following at the
// until time, with the container still running, as docker's does.
func TestEngineLogsFollowUntil(t *testing.T) {
	e := startTent(t)
	e.must(t, "run", "-d", "--name", "ticker", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.1; done")
	until := time.Now().Add(1500 * time.Millisecond)
	follow := e.command("logs", "-f", "-t", "--until", until.Format(time.RFC3339Nano), "ticker")
	var out bytes.Buffer
	follow.Stdout = &out
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	if code := exitWithin(t, follow, 10*time.Second); code != 0 {
		t.Fatalf("logs -f --until: exit %d, want 0 soon after the until time", code)
	}
	if st := e.must(t, "inspect", "-f", "{{.State.Status}}", "ticker"); st != "running\n" {
		t.Errorf("container: %q", st)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) < 5 {
		t.Fatalf("followed: %q", out.String())
	}
	for _, l := range lines {
		ts, err := time.Parse(time.RFC3339Nano, strings.Fields(l)[0])
		if err != nil || ts.After(until) {
			t.Errorf("line %q: after the until time %s (%v)", l, until.Format(time.RFC3339Nano), err)
		}
	}
}

func TestEngineDetachedLifecycle(t *testing.T) {
	e := startTent(t)
	id := strings.TrimSpace(e.must(t, "run", "-d", "--name", "svc", "busybox", "sh", "-c",
		`trap "echo got-usr1; exit 7" USR1; echo started; while true; do sleep 0.1; done`))
	if len(id) != 64 {
		t.Fatalf("run -d printed %q, want an ID", id)
	}
	if ps := e.must(t, "ps", "--format", "{{.Names}} {{.Status}}"); !strings.HasPrefix(ps, "svc Up") {
		t.Errorf("ps: %q", ps)
	}
	if q := strings.TrimSpace(e.must(t, "ps", "-q")); q != id[:12] {
		t.Errorf("ps -q: %q", q)
	}
	if st := e.must(t, "inspect", "--format", "{{.State.Running}} {{.Name}} {{.Config.Image}}", "svc"); st != "true /svc busybox\n" {
		t.Errorf("inspect: %q", st)
	}
	// logs -f follows until the container ends.
	follow := e.command("logs", "-f", "svc")
	var followed bytes.Buffer
	follow.Stdout = &followed
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	out, _, code := e.runIn(nil, "exec", "svc", "sh", "-c", "echo in-exec; exit 4")
	if out != "in-exec\n" || code != 4 {
		t.Errorf("exec: %q exit %d", out, code)
	}
	if _, _, code := e.runIn(nil, "exec", "svc", "nosuch"); code != 127 {
		t.Errorf("exec of a missing command: exit %d, want 127", code)
	}
	out, _, _ = e.runIn(strings.NewReader("through-stdin"), "exec", "-i", "svc", "cat")
	if out != "through-stdin" {
		t.Errorf("exec -i: %q", out)
	}
	if top := e.must(t, "top", "svc"); !strings.Contains(top, "sleep") {
		t.Errorf("top: %q", top)
	}
	e.must(t, "kill", "-s", "USR1", "svc")
	if code := strings.TrimSpace(e.must(t, "wait", "svc")); code != "7" {
		t.Errorf("wait: %q, want 7", code)
	}
	if err := follow.Wait(); err != nil {
		t.Errorf("logs -f: %v", err)
	}
	if followed.String() != "started\ngot-usr1\n" {
		t.Errorf("logs -f: %q", followed.String())
	}
	if logs := e.must(t, "logs", "--tail", "1", "svc"); logs != "got-usr1\n" {
		t.Errorf("logs --tail 1: %q", logs)
	}
	if st := e.must(t, "inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "svc"); st != "exited 7\n" {
		t.Errorf("after exit: %q", st)
	}
	// Restart, stop with a timeout (sh as pid 1 ignores SIGTERM: killed).
	e.must(t, "start", "svc")
	e.must(t, "stop", "-t", "1", "svc")
	if st := e.must(t, "inspect", "--format", "{{.State.ExitCode}} {{.RestartCount}}", "svc"); st != "137 0\n" {
		t.Errorf("after stop: %q", st)
	}
	e.must(t, "rename", "svc", "svc2")
	if _, errOut, code := e.runIn(nil, "rm", "svc"); code == 0 || !strings.Contains(errOut, "No such container: svc") {
		t.Errorf("rm of the old name: exit %d %q", code, errOut)
	}
	e.must(t, "run", "-d", "--name", "busy", "busybox", "sleep", "1000")
	if _, errOut, code := e.runIn(nil, "rm", "busy"); code == 0 || !strings.Contains(errOut, "stop the container before removing or force remove") {
		t.Errorf("rm of a running container: exit %d %q", code, errOut)
	}
	if _, errOut, code := e.runIn(nil, "rmi", "busybox"); code == 0 || !strings.Contains(errOut, "conflict") {
		t.Errorf("rmi of an image in use: exit %d %q", code, errOut)
	}
	e.must(t, "rm", "-f", "busy", "svc2")
	if ps := e.must(t, "ps", "-aq"); ps != "" {
		t.Errorf("containers left: %q", ps)
	}
}

func TestEngineContainersOutliveDaemon(t *testing.T) {
	e := startTent(t)
	e.must(t, "run", "-d", "--name", "long", "busybox", "sh", "-c", "echo before; sleep 1000")
	e.must(t, "run", "-d", "--name", "short", "busybox", "sh", "-c", "sleep 1; echo done; exit 3")
	pid, _ := strconv.Atoi(strings.TrimSpace(e.must(t, "inspect", "--format", "{{.State.Pid}}", "long")))
	e.kill9()
	time.Sleep(1500 * time.Millisecond) // "short" ends while no daemon runs
	if syscall.Kill(pid, 0) != nil {
		t.Fatalf("the container (pid %d) died with the daemon", pid)
	}
	e.start()
	if st := e.must(t, "inspect", "--format", "{{.State.Status}}", "long"); st != "running\n" {
		t.Errorf("long after restart: %q", st)
	}
	testutil.Eventually(t, func() bool {
		return e.out("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", "short") == "exited 3\n"
	})
	if logs := e.must(t, "logs", "short"); logs != "done\n" {
		t.Errorf("logs written while no daemon ran: %q", logs)
	}
	if out := e.must(t, "exec", "long", "echo", "still-here"); out != "still-here\n" {
		t.Errorf("exec after restart: %q", out)
	}
	e.must(t, "kill", "long")
	if code := strings.TrimSpace(e.must(t, "wait", "long")); code != "137" {
		t.Errorf("exit of a re-adopted container: %q", code)
	}
	if logs := e.must(t, "logs", "long"); logs != "before\n" {
		t.Errorf("logs of a re-adopted container: %q", logs)
	}
}

// TestEngineRestartPoliciesAcrossDaemonRestart: docker's rules when the
// daemon starts again. "always" starts even a container stopped by hand;
// "unless-stopped" does not; one that died while no daemon ran restarts;
// "no" stays stopped.
func TestEngineRestartPoliciesAcrossDaemonRestart(t *testing.T) {
	e := startTent(t)
	for _, c := range [][]string{{"always1", "always"}, {"unless1", "unless-stopped"}, {"plain", "no"}, {"unless2", "unless-stopped"}} {
		e.must(t, "run", "-d", "--name", c[0], "--restart", c[1], "busybox", "sleep", "1000")
	}
	e.must(t, "stop", "-t", "1", "always1", "unless1", "plain")
	pid, _ := strconv.Atoi(strings.TrimSpace(e.must(t, "inspect", "--format", "{{.State.Pid}}", "unless2")))
	e.stop()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil { // dies while no daemon runs
		t.Fatal(err)
	}
	e.start()
	status := func(name string) string {
		return strings.TrimSpace(e.out("inspect", "--format", "{{.State.Status}}", name))
	}
	testutil.Eventually(t, func() bool { return status("always1") == "running" && status("unless2") == "running" })
	for _, name := range []string{"unless1", "plain"} {
		if st := status(name); st != "exited" {
			t.Errorf("%s after the daemon restarted: %s, want exited", name, st)
		}
	}
	// A stop by hand still holds while the daemon runs.
	e.must(t, "stop", "-t", "1", "always1")
	time.Sleep(500 * time.Millisecond)
	if st := status("always1"); st != "exited" {
		t.Errorf("always1 after a stop: %s", st)
	}
}

// bigImageArchive makes a docker-save archive (with tent save) of an image
// with a 32 MiB layer.
func bigImageArchive(t *testing.T, e *tentEngine) string {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	testutil.BusyboxRootfs(t, rootfs)
	blob := make([]byte, 32<<20)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(rootfs, "blob"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "big.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	e.must(t, "import", tarball, "big:1")
	archive := filepath.Join(dir, "big-save.tar")
	e.must(t, "save", "-o", archive, "big:1")
	e.must(t, "rmi", "big:1")
	return archive
}

// TestEngineRestartAfterReboot: after a host reboot (simulated), the
// daemon starts "always" and "unless-stopped" containers that were
// running, leaves one stopped by hand and one without a policy stopped,
// and records how the others ended.
func TestEngineRestartAfterReboot(t *testing.T) {
	e := startTent(t)
	for _, c := range [][]string{{"always1", "always"}, {"unless1", "unless-stopped"}, {"stopped1", "unless-stopped"}, {"plain", "no"}} {
		e.must(t, "run", "-d", "--name", c[0], "--network", "none", "--restart", c[1], "-v", c[0]+":/data", "busybox", "sh", "-c", "echo run >> /data/runs; exec sleep 1000")
	}
	e.must(t, "stop", "-t", "1", "stopped1")
	e.rebootHost(t)
	e.start()
	status := func(name string) string {
		return strings.TrimSpace(e.out("inspect", "--format", "{{.State.Status}}", name))
	}
	if st := status("plain"); st == "running" {
		t.Errorf("right after the reboot, a container whose processes are gone shows %s", st)
	}
	runs := func(name string) string { return e.out("exec", name, "cat", "/data/runs") }
	testutil.Eventually(t, func() bool { return runs("always1") == "run\nrun\n" && runs("unless1") == "run\nrun\n" })
	for _, name := range []string{"stopped1", "plain"} {
		if st := status(name); st != "exited" {
			t.Errorf("%s after the reboot: %s, want exited", name, st)
		}
	}
	if out := e.must(t, "start", "plain"); strings.TrimSpace(out) != "plain" {
		t.Errorf("start after the reboot: %q", out)
	}
}
