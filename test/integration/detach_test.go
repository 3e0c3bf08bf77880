package integration

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startOnPty starts cmd with a new terminal as its controlling one and
// returns the terminal's master side.
func startOnPty(t *testing.T, cmd *exec.Cmd) *os.File {
	t.Helper()
	master, slave := openPty(t)
	t.Cleanup(func() { master.Close() })
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	slave.Close()
	return master
}

// exitWithin waits for cmd and returns its exit status (-1: killed after
// the timeout).
func exitWithin(t *testing.T, cmd *exec.Cmd, d time.Duration) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return 0
	case <-time.After(d):
		cmd.Process.Kill()
		<-done
		return -1
	}
}

// detachThroughAPI takes over the stream of an upgrading POST (with a
// JSON body, if any), types keys into it and checks that the daemon ends
// the stream.
func (e *tentEngine) detachThroughAPI(t *testing.T, path, body, keys string) {
	t.Helper()
	conn, err := net.Dial("unix", strings.TrimPrefix(e.host, "unix://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: tent\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body)
	br := bufio.NewReader(conn)
	if status, _ := br.ReadString('\n'); !strings.Contains(status, "101") {
		t.Fatalf("POST %s: %q", path, status)
	}
	io.WriteString(conn, keys)
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.Copy(io.Discard, br); err != nil {
		t.Errorf("POST %s: the stream did not end on the detach keys: %v", path, err)
	}
}

// TestEngineDetachKeys: ctrl-p ctrl-q (or --detach-keys) leaves a `run -it`
// container running, with its terminal open for the next attach, through
// both CLIs.
func TestEngineDetachKeys(t *testing.T) {
	e := startTent(t)
	tent := func(args ...string) *exec.Cmd {
		cmd := exec.Command(tentBin(), args...)
		cmd.Env = append(os.Environ(), "TENT_HOST="+e.host)
		return cmd
	}
	for _, c := range []struct {
		client func(...string) *exec.Cmd
		name   string
		flags  []string
		seq    string
	}{
		{e.command, "detach-docker", nil, "\x10\x11"},
		{tent, "detach-tent", []string{"--detach-keys", "ctrl-x"}, "\x18"},
	} {
		args := append(append([]string{"run", "-it", "--name", c.name}, c.flags...), "busybox", "sh")
		run := c.client(args...)
		term := startOnPty(t, run)
		io.WriteString(term, "echo $((6*7))\n")
		readUntil(t, term, "42")
		io.WriteString(term, c.seq)
		if code := exitWithin(t, run, 10*time.Second); code != 0 {
			t.Errorf("%s: run -it after the detach keys: exit %d, want 0", c.name, code)
		}
		if st := e.must(t, "inspect", "-f", "{{.State.Status}}", c.name); st != "running\n" {
			t.Fatalf("%s after detaching: %q", c.name, st)
		}
		attach := c.client(append(append([]string{"attach"}, c.flags...), c.name)...)
		term = startOnPty(t, attach)
		time.Sleep(300 * time.Millisecond) // let attach reach the daemon before typing
		io.WriteString(term, "exit 4\n")
		if code := exitWithin(t, attach, 10*time.Second); code != 4 {
			t.Errorf("%s: attach then exit 4: exit %d", c.name, code)
		}
		if got := e.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", c.name); got != "exited 4\n" {
			t.Errorf("%s at the end: %q", c.name, got)
		}
	}

	// Through the API: the daemon ends the stream on detachKeys.
	e.must(t, "run", "-dit", "--name", "detach-api", "busybox", "sh")
	e.detachThroughAPI(t, "/v1.47/containers/detach-api/attach?stream=1&stdin=1&stdout=1&detachKeys=ctrl-x", "", "\x18")
	if st := e.must(t, "inspect", "-f", "{{.State.Status}}", "detach-api"); st != "running\n" {
		t.Errorf("after an API detach: %q", st)
	}
	if _, errOut, code := e.runIn(nil, "attach", "--no-stdin", "--detach-keys", "ctrl-", "detach-api"); code == 0 || !strings.Contains(errOut, "400") { // a Bad Request, as dockerd answers
		t.Errorf("bad --detach-keys: exit %d %q", code, errOut)
	}
}

// TestEngineExecDetachKeys: the detach keys end an `exec -it` session and
// leave the exec's process running, as with docker (whose CLI catches the
// keys itself, says "read escape sequence" and exits 1, checked against
// dockerd); through the API the daemon ends the stream on the keys of the
// exec's create request.
func TestEngineExecDetachKeys(t *testing.T) {
	e := startTent(t)
	e.must(t, "run", "-d", "--name", "host", "busybox", "sleep", "600")
	ex := e.command("exec", "-it", "host", "sh")
	term := startOnPty(t, ex)
	io.WriteString(term, "echo $$ > /tmp/exec.pid; echo $((6*7))\n")
	readUntil(t, term, "42")
	io.WriteString(term, "\x10\x11")
	if code := exitWithin(t, ex, 10*time.Second); code != 1 {
		t.Errorf("exec -it after ctrl-p ctrl-q: exit %d, want 1 (as docker's)", code)
	}
	if out := e.must(t, "exec", "host", "sh", "-c", "kill -0 $(cat /tmp/exec.pid) && echo alive"); out != "alive\n" {
		t.Errorf("the detached exec's shell: %q", out)
	}

	// Through the API, with the exec's own keys.
	var created struct{ ID string }
	resp, err := e.http().Post("http://tent/v1.47/containers/host/exec", "application/json",
		strings.NewReader(`{"Cmd":["sh"],"Tty":true,"AttachStdin":true,"AttachStdout":true,"DetachKeys":"ctrl-x"}`))
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&created)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || created.ID == "" {
		t.Fatalf("exec create: %s %+v", resp.Status, created)
	}
	e.detachThroughAPI(t, "/v1.47/exec/"+created.ID+"/start", `{"Detach":false,"Tty":true}`, "\x18")
	var inspect struct {
		Running bool
		Pid     int
	}
	resp, err = e.http().Get("http://tent/v1.47/exec/" + created.ID + "/json")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&inspect)
	resp.Body.Close()
	if !inspect.Running || inspect.Pid == 0 {
		t.Errorf("exec after an API detach: %+v, want running", inspect)
	}
	resp, err = e.http().Post("http://tent/v1.47/containers/host/exec", "application/json",
		strings.NewReader(`{"Cmd":["true"],"DetachKeys":"ctrl-"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("exec create with bad detach keys: %s, want 400", resp.Status)
	}
}
