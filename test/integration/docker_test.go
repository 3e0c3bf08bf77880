package integration

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/imagestest"
	"github.com/tent-project/tent/internal/testutil"
)

// dockerCgroupParent keeps the test engine's cgroups apart from any other.
const dockerCgroupParent = "/tent-docker-test"

// dockerEngine is a private dockerd (Debian's docker.io) with tent-runtime
// registered as the runtime "tent".
type dockerEngine struct {
	t    *testing.T
	host string
	// cli is the client it runs (default: the docker CLI); tent's, with
	// -H, for a test that holds tent's CLI to docker's.
	cli string
}

func startDocker(t *testing.T) *dockerEngine {
	t.Helper()
	testutil.RequiresRoot(t)
	for _, bin := range []string{"dockerd", "docker", "containerd"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (apt-get install docker.io)", bin)
		}
	}
	dir, err := os.MkdirTemp("/tmp", "tent-docker-")
	if err != nil {
		t.Fatal(err)
	}
	sock := "unix://" + filepath.Join(dir, "docker.sock")
	logf, err := os.Create(filepath.Join(dir, "dockerd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dockerd",
		"--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"),
		"-H", sock, "--pidfile", filepath.Join(dir, "docker.pid"),
		"--add-runtime", "tent="+runtimeBin(), "--cgroup-parent", dockerCgroupParent,
		"--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	d := &dockerEngine{t: t, host: sock}
	t.Cleanup(func() {
		if ids := strings.Fields(d.out("ps", "-aq")); len(ids) > 0 {
			d.run(append([]string{"rm", "-f"}, ids...)...)
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		logf.Close()
		if err := testutil.RemoveCgroupParent(dockerCgroupParent); err != nil {
			t.Errorf("docker's cgroup parent left behind: %v", err)
		}
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("dockerd log (tail):\n%s", tail(string(b), 30))
		}
		// dockerd 20.10 leaves its exec root's netns/default bound (an
		// nsfs mount), which kept the directory and a mount per test.
		mounts := mountsUnder(dir)
		for i := len(mounts) - 1; i >= 0; i-- {
			syscall.Unmount(mounts[i], syscall.MNT_DETACH)
		}
		_ = os.RemoveAll(dir)
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, code := d.run("version"); code == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dockerd did not answer within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The image: the busybox rootfs, imported as docker users would.
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	testutil.BusyboxRootfs(t, rootfs)
	tarball := filepath.Join(t.TempDir(), "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", tarball, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	d.must(t, "import", tarball, "busybox:tent")
	return d
}

// startPair starts dockerd and a tent daemon for a test that holds one to
// the other: both by name ("docker", "tent"), and each one's busybox image.
func startPair(t *testing.T) (d *dockerEngine, e *tentEngine, engines map[string]*dockerEngine, images map[string]string) {
	d, e = startDocker(t), startTent(t)
	return d, e, map[string]*dockerEngine{"docker": d, "tent": &e.dockerEngine}, map[string]string{"docker": "busybox:tent", "tent": "busybox:latest"}
}

// newImageStore makes an image store (bbolt, content store, overlay or
// native snapshots) in a temporary directory.
func newImageStore(t *testing.T) *images.Store {
	t.Helper()
	return imagestest.New(t, imagestest.Any).Images
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func (d *dockerEngine) command(args ...string) *exec.Cmd {
	if d.cli != "" {
		return exec.Command(d.cli, append([]string{"-H", d.host}, args...)...)
	}
	cmd := exec.Command("docker", args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.host)
	return cmd
}

// run returns combined output and exit status.
// runIn runs the docker CLI with stdin from in: output, errors, status.
func (d *dockerEngine) runIn(in io.Reader, args ...string) (string, string, int) {
	return capture(d.t, d.command(args...), in)
}

func (d *dockerEngine) run(args ...string) (string, int) {
	out, err := d.command(args...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		d.t.Fatalf("docker %v: %v", args, err)
	}
	return string(out), 0
}

func (d *dockerEngine) out(args ...string) string {
	out, _ := d.run(args...)
	return out
}

// must runs docker and fails t (the running subtest) unless it succeeds.
func (d *dockerEngine) must(t *testing.T, args ...string) string {
	t.Helper()
	out, code := d.run(args...)
	if code != 0 {
		t.Fatalf("docker %v: exit %d: %s", args, code, out)
	}
	return out
}

func TestDockerWithTentRuntime(t *testing.T) {
	d := startDocker(t)

	t.Run("run", func(t *testing.T) {
		out := d.must(t, "run", "--rm", "--runtime", "tent", "busybox:tent", "sh", "-c", "echo hello; cat /proc/1/cmdline; echo")
		if !strings.HasPrefix(out, "hello\nsh") {
			t.Errorf("output %q", out)
		}
	})
	t.Run("exit statuses", func(t *testing.T) {
		if out, code := d.run("run", "--rm", "--runtime", "tent", "busybox:tent", "sh", "-c", "exit 3"); code != 3 {
			t.Errorf("exit 3: got %d %s", code, out)
		}
		out, code := d.run("run", "--rm", "--runtime", "tent", "busybox:tent", "nonexistent")
		if code != 127 || !strings.Contains(out, "executable file not found") {
			t.Errorf("missing program: got %d %s", code, out)
		}
		if out, code := d.run("run", "--rm", "--runtime", "tent", "busybox:tent", "/etc/passwd"); code != 126 {
			t.Errorf("not executable: got %d %s", code, out)
		}
	})
	t.Run("limits and read-only", func(t *testing.T) {
		out := d.must(t, "run", "--rm", "--runtime", "tent", "--memory", "64m", "--cpus", "0.5", "--pids-limit", "30", "--read-only",
			"busybox:tent", "sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max /sys/fs/cgroup/cpu/cpu.cfs_quota_us 2>/dev/null || cat /sys/fs/cgroup/memory.max /sys/fs/cgroup/pids.max /sys/fs/cgroup/cpu.max; touch /x 2>&1; true")
		for _, want := range []string{"67108864", "30", "50000", "Read-only file system"} {
			if !strings.Contains(out, want) {
				t.Errorf("missing %q in %q", want, out)
			}
		}
	})
	t.Run("detached, exec, top, pause, stop", func(t *testing.T) {
		d.must(t, "run", "-d", "--name", "s1", "--runtime", "tent", "busybox:tent", "sleep", "1000")
		if out := d.must(t, "exec", "s1", "sh", "-c", "echo exec-ok; ps"); !strings.Contains(out, "exec-ok") || !strings.Contains(out, "sleep 1000") {
			t.Errorf("exec: %q", out)
		}
		if out, code := d.run("exec", "s1", "sh", "-c", "exit 9"); code != 9 {
			t.Errorf("exec exit status %d %s", code, out)
		}
		if out := d.must(t, "top", "s1"); !strings.Contains(out, "sleep 1000") {
			t.Errorf("top: %q", out)
		}
		d.must(t, "pause", "s1")
		if out := d.must(t, "inspect", "-f", "{{.State.Status}}", "s1"); strings.TrimSpace(out) != "paused" {
			t.Errorf("after pause: %q", out)
		}
		d.must(t, "unpause", "s1")
		d.must(t, "stop", "-t", "1", "s1")
		if out := d.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "s1"); strings.TrimSpace(out) != "exited 137" {
			t.Errorf("after stop: %q", out)
		}
		d.must(t, "rm", "s1")
	})
	t.Run("kill and wait", func(t *testing.T) {
		d.must(t, "run", "-d", "--name", "k1", "--runtime", "tent", "busybox:tent", "sh", "-c", "trap 'exit 42' TERM; while true; do sleep 0.1; done")
		time.Sleep(300 * time.Millisecond)
		d.must(t, "kill", "-s", "TERM", "k1")
		if out := d.must(t, "wait", "k1"); strings.TrimSpace(out) != "42" {
			t.Errorf("wait after kill -s TERM: %q", out)
		}
		d.must(t, "rm", "k1")
	})
	t.Run("docker save loads into tent's image store with docker's ID", func(t *testing.T) {
		archive := filepath.Join(t.TempDir(), "busybox.tar")
		d.must(t, "save", "-o", archive, "busybox:tent")
		want := strings.TrimSpace(d.must(t, "image", "inspect", "-f", "{{.Id}}", "busybox:tent"))
		store := newImageStore(t)
		f, err := os.Open(archive)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		imgs, err := store.Load(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 1 || imgs[0].ID.String() != want {
			t.Fatalf("loaded %v, want docker's image ID %s", imgs, want)
		}
		if got, err := store.Get("busybox:tent"); err != nil || got.ID.String() != want {
			t.Errorf("by name: %v %v", got, err)
		}
	})
	t.Run("interactive terminal", func(t *testing.T) {
		master, slave := openPty(t)
		defer master.Close()
		cmd := d.command("run", "-it", "--rm", "--runtime", "tent", "busybox:tent", "sh")
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		slave.Close()
		go func() {
			time.Sleep(500 * time.Millisecond)
			_, _ = io.WriteString(master, "echo hi-$((6*7)) $(tty); exit 5\r")
		}()
		out := readUntil(t, master, "hi-42 /dev/pts/0")
		err := cmd.Wait()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 5 {
			t.Errorf("docker run -it: %v, want exit 5 (output %q)", err, out)
		}
	})
}

// mountsUnder lists the mount points under dir, sorted (a parent before
// what is mounted below it).
func mountsUnder(dir string) []string {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], dir+"/") {
			out = append(out, f[4])
		}
	}
	slices.Sort(out)
	return out
}
