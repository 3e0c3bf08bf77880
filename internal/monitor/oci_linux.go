package monitor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"golang.org/x/sys/unix"
)

// OCIRuntime is an OCI runtime binary with runc's command line (runc,
// crun, runsc...) that makes the container instead of tent's runtime, as
// a runtime dockerd was given with --add-runtime.
type OCIRuntime struct {
	Path string `json:"path"`
	// Args go before the command (the binary's global options).
	Args []string `json:"args,omitempty"`
	// Root is the binary's state directory (--root).
	Root string `json:"root"`
}

// Command is the binary's command line for args (a command and its
// options), with its global options and state root first.
func (o *OCIRuntime) Command(args ...string) *exec.Cmd {
	all := append(append(append([]string{}, o.Args...), "--root", o.Root), args...)
	return exec.Command(o.Path, all...)
}

// Run runs the binary with args and returns what it printed; its error
// says what the binary said on stderr.
func (o *OCIRuntime) Run(stdin []byte, args ...string) ([]byte, error) {
	cmd := o.Command(args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.Output()
	if err != nil {
		return out, o.failure(args[0], err, stderr.String())
	}
	return out, nil
}

// failure is the error of a command that failed: the last line the
// binary wrote (runc logs "time=... level=error msg=..."), or how it ended.
func (o *OCIRuntime) failure(cmd string, err error, said string) error {
	lines := strings.Split(strings.TrimSpace(said), "\n")
	if msg := logMessage(lines[len(lines)-1]); msg != "" {
		return fmt.Errorf("%s %s: %s", filepath.Base(o.Path), cmd, msg)
	}
	return fmt.Errorf("%s %s: %w", filepath.Base(o.Path), cmd, err)
}

// logMessage is the message of a runtime's log line: logfmt's msg="..."
// or a JSON line's "msg", else the line.
func logMessage(line string) string {
	var j struct{ Msg string }
	if json.Unmarshal([]byte(line), &j) == nil && j.Msg != "" {
		return j.Msg
	}
	if i := strings.Index(line, "msg="); i >= 0 {
		if s, err := strconv.QuotedPrefix(line[i+4:]); err == nil {
			if u, err := strconv.Unquote(s); err == nil {
				return u
			}
		}
		return line[i+4:]
	}
	return strings.TrimSpace(line)
}

// ociWorkload is a container made by an OCI runtime binary. The binary's
// create leaves the container's init to this process, a child subreaper,
// which waits for it; start, signals, pauses and updates are the
// engine's, through the binary.
type ociWorkload struct {
	rt  *OCIRuntime
	cfg Config
	pid int
	cg  cgroups.Manager // nil: unknown
}

func (w *ociWorkload) Pid() int { return w.pid }

func (w *ociWorkload) Wait() (int, error) { return waitPid(w.pid) }

func (w *ociWorkload) oomKilled() bool {
	if w.cg == nil {
		return false
	}
	n, err := w.cg.OOMKills()
	return err == nil && n > 0
}

// finish deletes the container from the binary's state.
func (w *ociWorkload) finish() {
	if _, err := w.rt.Run(nil, "delete", "--force", w.cfg.ID); err != nil {
		fmt.Fprintf(os.Stderr, "delete: %v\n", err)
	}
}

// waitPid waits for pid, a child of this process (or one it inherited
// as a subreaper), and returns its exit code (128+signal if killed).
func waitPid(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, err
		}
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// createOCI makes the container with the binary: its stdio are st's
// ends, its init is left to this process.
func (m *monitor) createOCI(st *stdio) (*ociWorkload, error) {
	rt := m.cfg.OCI
	// The binary's create exits once the init waits; the init is then
	// this process's to reap.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return nil, fmt.Errorf("subreaper: %w", err)
	}
	pid, err := m.ociStart(st, "init.pid", "create", "--bundle", m.cfg.Bundle)
	if err != nil {
		return nil, err
	}
	w := &ociWorkload{rt: rt, cfg: m.cfg, pid: pid}
	if b, err := os.ReadFile(filepath.Join(m.cfg.Bundle, "config.json")); err == nil {
		var s specs.Spec
		if json.Unmarshal(b, &s) == nil && s.Linux != nil {
			if p, err := cgroups.ConvertPath(s.Linux.CgroupsPath, m.cfg.ID, false); err == nil {
				w.cg, _ = cgroups.New(p)
			}
		}
	}
	return w, nil
}

// ociStart runs the binary's create or exec (args, before the ID) with
// st's ends as the process's stdio and, with a terminal, a console
// socket for its master; it returns the process's PID, read from
// pidName in the monitor's directory.
func (m *monitor) ociStart(st *stdio, pidName string, args ...string) (int, error) {
	rt := m.cfg.OCI
	pidFile := filepath.Join(m.dir, pidName)
	os.Remove(pidFile)
	args = append(args, "--pid-file", pidFile)
	var console *consoleListener
	if st.tty {
		var err error
		if console, err = listenConsole(); err != nil {
			return 0, err
		}
		defer console.close()
		args = append(args, "--console-socket", console.path)
	}
	cmd := rt.Command(append(args, m.cfg.ID)...)
	for i, f := range st.child {
		if f == nil {
			continue
		}
		switch i {
		case 0:
			cmd.Stdin = f
		case 1:
			cmd.Stdout = f
		case 2:
			cmd.Stderr = f
		}
	}
	// The binary's own complaints go to a log of this call's (execs may
	// run at once), read on a failure.
	logPath := filepath.Join(m.dir, strings.TrimSuffix(pidName, ".pid")+"-runtime.log")
	cmd.Args = append([]string{cmd.Args[0], "--log", logPath}, cmd.Args[1:]...)
	err := cmd.Run()
	said, _ := os.ReadFile(logPath)
	os.Remove(logPath)
	if err != nil {
		msg := lastError(said)
		return 0, classify(rt.failure(args[0], err, msg), logMessage(msg))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return 0, fmt.Errorf("%s %s wrote no pid file: %w", filepath.Base(rt.Path), args[0], err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s %s: pid file: %w", filepath.Base(rt.Path), args[0], err)
	}
	if console != nil {
		master, err := console.receive()
		if err != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			return 0, err
		}
		st.setMaster(master, st.openStdin)
	}
	return pid, nil
}

// lastError is the last line of a runtime's log that is an error, or its
// last line.
func lastError(log []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(log))
	for sc.Scan() {
		line := sc.Text()
		if last == "" || strings.Contains(line, "error") {
			last = line
		}
	}
	return last
}

// classify gives a binary's failure to start a process its class, so
// that the engine answers 127 or 126 as for tent's runtime. The binary's
// only report is its text; dockerd reads containerd's the same way.
func classify(err error, msg string) error {
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		return errdefs.WithClass(err, errdefs.ClassOf(errdefs.ErrNotFound))
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		return errdefs.WithClass(err, errdefs.ClassOf(errdefs.ErrPermission))
	}
	return err
}

// ociExec starts req's process in the container with the binary's exec.
func (m *monitor) ociExec(req ExecRequest) (*execProc, error) {
	b, err := json.Marshal(req.Process)
	if err != nil {
		return nil, err
	}
	procFile := filepath.Join(m.dir, "exec-"+req.ID+".json")
	if err := os.WriteFile(procFile, b, 0o600); err != nil {
		return nil, err
	}
	defer os.Remove(procFile)
	st, err := newOCIStdio(req.Process.Terminal, req.Stdin)
	if err != nil {
		return nil, err
	}
	pid, err := m.ociStart(st, "exec-"+req.ID+".pid", "exec", "--detach", "--process", procFile)
	if err == nil {
		err = st.started(req.Stdin)
	}
	if err != nil {
		st.close()
		return nil, err
	}
	os.Remove(filepath.Join(m.dir, "exec-"+req.ID+".pid"))
	ep := &execProc{pid: pid, outputs: outputs(st), stdin: st.stdin, wait: func() (int, error) { return waitPid(pid) }, close: st.close}
	if st.master != nil {
		ep.resize = ptyResizer(st.master)
	}
	return ep, nil
}

// consoleListener is a console socket that a runtime binary connects to
// with a terminal's master. It lives in a directory of its own under the
// system's temporary one: the binary dials its path, which a deep
// directory would make longer than a socket address may be.
type consoleListener struct {
	dir  string
	path string
	l    *net.UnixListener
}

func listenConsole() (*consoleListener, error) {
	dir, err := os.MkdirTemp("", "tent-console-")
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &consoleListener{dir: dir, path: path, l: l}, nil
}

// receive takes the master the binary sent (it has connected by the
// time its create or exec returns).
func (c *consoleListener) receive() (*os.File, error) {
	conn, err := c.l.AcceptUnix()
	if err != nil {
		return nil, fmt.Errorf("console socket: %w", err)
	}
	defer conn.Close()
	f, err := conn.File()
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return runtime.RecvConsole(f)
}

func (c *consoleListener) close() {
	c.l.Close()
	os.RemoveAll(c.dir)
}
