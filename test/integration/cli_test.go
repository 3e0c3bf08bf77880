package integration

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// tent runs the tent client against the engine.
func (e *tentEngine) tent(in io.Reader, args ...string) (string, string, int) {
	cmd := exec.Command(tentBin(), args...)
	cmd.Env = append(os.Environ(), "TENT_HOST="+e.host)
	return capture(e.t, cmd, in)
}

func (e *tentEngine) tentOK(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, code := e.tent(nil, args...)
	if code != 0 {
		t.Fatalf("tent %v: exit %d: %s%s", args, code, out, errOut)
	}
	return out
}

func TestTentCLI(t *testing.T) {
	e := startTent(t)
	// bootstrap makes a base image without any registry.
	e.tentOK(t, "image", "bootstrap", "busybox", "--name", "bb:boot")
	if out := e.tentOK(t, "images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "bb:boot") {
		t.Errorf("images: %q", out)
	}
	if out, errOut, code := e.tent(nil, "run", "--rm", "bb:boot", "sh", "-c", "echo out; echo err >&2; exit 3"); out != "out\n" || errOut != "err\n" || code != 3 {
		t.Errorf("run: %q %q exit %d", out, errOut, code)
	}
	if _, errOut, code := e.tent(nil, "run", "--rm", "bb:boot", "nosuch"); code != 127 || !strings.Contains(errOut, "executable file not found") {
		t.Errorf("run of a missing command: exit %d %q", code, errOut)
	}
	if _, errOut, code := e.tent(nil, "run", "--rm", "nosuchimage"); code != 125 || !strings.Contains(errOut, "Unable to find image 'nosuchimage'") {
		t.Errorf("run of a missing image: exit %d %q", code, errOut)
	}
	if out, _, code := e.tent(strings.NewReader("a\nb\nc\n"), "run", "--rm", "-i", "bb:boot", "wc", "-l"); strings.TrimSpace(out) != "3" || code != 0 {
		t.Errorf("run -i: %q exit %d", out, code)
	}
	// start -a -i, as docker's: the output, the input, the exit status.
	e.tentOK(t, "create", "-i", "--name", "later", "bb:boot", "sh", "-c", "echo started; wc -l; echo err >&2; exit 4")
	if out, errOut, code := e.tent(strings.NewReader("x\ny\n"), "start", "-a", "-i", "later"); out != "started\n2\n" || errOut != "err\n" || code != 4 {
		t.Errorf("start -a -i: %q %q exit %d", out, errOut, code)
	}
	if _, errOut, code := e.tent(nil, "start", "-a", "later", "web"); code != 1 || !strings.Contains(errOut, "cannot start and attach multiple containers") {
		t.Errorf("start -a of two containers: exit %d %q", code, errOut)
	}
	e.tentOK(t, "rm", "later")
	id := strings.TrimSpace(e.tentOK(t, "run", "-d", "--name", "web", "-e", "GREETING=hi", "bb:boot", "sh", "-c", "echo $GREETING; sleep 1000"))
	if ps := e.tentOK(t, "ps", "-q"); strings.TrimSpace(ps) != id[:12] {
		t.Errorf("ps -q: %q, want %s", ps, id[:12])
	}
	if ps := e.tentOK(t, "ps"); !strings.Contains(ps, "CONTAINER ID") || !strings.Contains(ps, "web") {
		t.Errorf("ps: %q", ps)
	}
	if out, _, code := e.tent(nil, "exec", "web", "sh", "-c", "echo $GREETING-exec; exit 6"); out != "hi-exec\n" || code != 6 {
		t.Errorf("exec: %q exit %d", out, code)
	}
	if logs := e.tentOK(t, "logs", "web"); logs != "hi\n" {
		t.Errorf("logs: %q", logs)
	}
	if st := e.tentOK(t, "inspect", "--format", "{{.State.Status}} {{.Name}}", "web"); st != "running /web\n" {
		t.Errorf("inspect: %q", st)
	}
	e.tentOK(t, "kill", "web")
	if code := strings.TrimSpace(e.tentOK(t, "wait", "web")); code != "137" {
		t.Errorf("wait after kill: %q", code)
	}
	e.tentOK(t, "rm", "web")
	if _, errOut, code := e.tent(nil, "rm", "web"); code != 1 || !strings.Contains(errOut, "No such container: web") {
		t.Errorf("rm of a removed container: exit %d %q", code, errOut)
	}

	// A terminal: run -it under a pty.
	master, slave := openPty(t)
	defer master.Close()
	cmd := exec.Command(tentBin(), "run", "--rm", "-it", "bb:boot", "sh")
	cmd.Env = append(os.Environ(), "TENT_HOST="+e.host)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 21, Col: 77})
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	go io.WriteString(master, "echo size=$(stty size); exit 9\n")
	out := readUntil(t, master, "size=21 77")
	if err := cmd.Wait(); err == nil || err.(*exec.ExitError).ExitCode() != 9 {
		t.Errorf("run -it: %v, want exit 9 (%q)", err, out)
	}

	// save, rmi, load: the same image comes back.
	imgID := strings.TrimSpace(e.tentOK(t, "inspect", "--format", "{{.Id}}", "bb:boot"))
	archive := filepath.Join(t.TempDir(), "bb.tar")
	e.tentOK(t, "save", "-o", archive, "bb:boot")
	if out := e.tentOK(t, "rmi", "bb:boot"); !strings.Contains(out, "Deleted: "+imgID) {
		t.Errorf("rmi: %q", out)
	}
	if out := e.tentOK(t, "load", "-i", archive); out != "Loaded image: bb:boot\n" {
		t.Errorf("load: %q", out)
	}
	if got := strings.TrimSpace(e.tentOK(t, "inspect", "--format", "{{.Id}}", "bb:boot")); got != imgID {
		t.Errorf("after load: %s, want %s", got, imgID)
	}
}
