package integration

import (
	"bytes"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/testutil"
	"golang.org/x/sys/unix"
)

// readUntil reads from f until want shows up or five seconds pass.
func readUntil(t *testing.T, f *os.File, want string) string {
	t.Helper()
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		b := make([]byte, 4096)
		for {
			n, err := f.Read(b)
			buf.Write(b[:n])
			if err != nil || strings.Contains(buf.String(), want) {
				return
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Errorf("no %q from the terminal; got %q", want, buf.String())
	}
	return buf.String()
}

func TestConsoleSocket(t *testing.T) {
	r := newRT(t)
	sock := filepath.Join(t.TempDir(), "console.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b := testutil.Bundle(t, []string{"sh", "-c", "tty; stty size; echo done; sleep 1000"}, func(s *specs.Spec) {
		s.Process.Terminal = true
		s.Process.ConsoleSize = &specs.Box{Height: 30, Width: 100}
	})
	got := make(chan *os.File, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		f, _ := c.(*net.UnixConn).File()
		c.Close()
		m, err := runtime.RecvConsole(f)
		f.Close()
		if err != nil {
			t.Error(err)
		}
		got <- m
	}()
	r.ok("create", "--bundle", b, "--console-socket", sock, "tty")
	master := <-got
	if master == nil {
		t.Fatal("no pty master received")
	}
	defer master.Close()
	r.ok("start", "tty")
	out := readUntil(t, master, "done")
	if !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "30 100") {
		t.Errorf("terminal output %q", out)
	}
	// Without a console socket a detached terminal container is refused.
	res := r.run(b, nil, "create", "tty2")
	if res.Code == 0 || !strings.Contains(res.Stderr, "console socket") {
		t.Errorf("create with a terminal and no console socket: %s", res)
	}
	r.assertGone("tty2", "/tty2")
}

// openPty returns a new pty pair.
func openPty(t *testing.T) (master, slave *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	return m, s
}

func TestRunInteractiveTerminal(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sh"}, func(s *specs.Spec) { s.Process.Terminal = true })
	master, slave := openPty(t)
	defer master.Close()
	cmd := exec.Command(runtimeBin(), "--root", r.root, "run", "--bundle", b, "inter")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go func() { _, _ = io.WriteString(master, "echo hi-$((6*7)); exit 3\n") }()
	out := readUntil(t, master, "hi-42")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 {
		t.Errorf("interactive run: %v, want exit 3 (output %q)", err, out)
	}
	r.assertGone("inter", "/inter")
}

func TestExecTerminal(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"sleep", "1000"}, nil)
	r.ok("run", "-d", "--bundle", b, "exectty")
	r.waitStatus("exectty", "running")
	master, slave := openPty(t)
	defer master.Close()
	cmd := exec.Command(runtimeBin(), "--root", r.root, "exec", "-t", "exectty", "sh", "-c", "tty; exit 4")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	out := readUntil(t, master, "/dev/pts/")
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 4 {
		t.Errorf("exec -t: %v, want exit 4 (output %q)", err, out)
	}
}
