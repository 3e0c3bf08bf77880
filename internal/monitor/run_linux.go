package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/vm/wire"
	"golang.org/x/sys/unix"
)

// monitor is the state of the monitor process.
type monitor struct {
	cfg   Config
	dir   string
	log   *logfile.Writer
	stdin io.WriteCloser
	// resize sets the terminal's size (nil: no terminal).
	resize func(height, width uint16) error
	work   workload

	mu        sync.Mutex
	attached  map[*attachment]struct{}
	waiters   []net.Conn // told the exit record when the container ends
	done      bool
	exit      []byte // the exit record, a JSON line, once done
	stdinUsed bool
	finished  <-chan struct{}
	execs     map[string]*execState
}

type attachment struct {
	conn           net.Conn
	w              *streams.Writer
	stdout, stderr bool
}

// Main is the monitor process: `tent-monitor monitor DIR`. It reports on stdout
// once the container is created, then serves until the container ends.
func Main(dir string) int {
	// Started from a memfd, the process would be named after its fd.
	unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("tent-monitor\x00")[0])), 0, 0, 0)
	signal.Ignore(syscall.SIGHUP, syscall.SIGINT, syscall.SIGTERM, syscall.SIGPIPE)
	report := func(r ready) {
		json.NewEncoder(os.Stdout).Encode(r)
		os.Stdout.Close()
	}
	var pre *runtime.Prestarted
	var in *answers
	if dir != spareDir {
		in = stdinAnswers()
	} else {
		// A spare has time: it starts its container's init too, so
		// that a start needs neither process start (runtime.Prestart),
		// and builds its JSON codecs; both processes stay in the idle
		// class until a container comes. On a busy machine the
		// container may come first: it then gets this monitor at once,
		// without what is not done yet.
		setIdle(os.Getpid(), true)
		var err error
		if !dirWaiting() {
			if pre, err = runtime.Prestart(); err != nil {
				fmt.Fprintf(os.Stderr, "spare monitor: %v\n", err)
			} else if parent := os.Getenv(spareCgroupEnv); parent != "" && !dirWaiting() {
				if err := pre.JoinCgroup(parent); err != nil {
					fmt.Fprintf(os.Stderr, "spare monitor: %v\n", err)
				}
			}
		}
		if !dirWaiting() {
			runtime.WarmUp()
		}
		var ok bool
		dir, in, ok = awaitDir()
		setIdle(os.Getpid(), false)
		if !ok {
			if pre != nil {
				pre.Close()
			}
			return 0 // no container came: the daemon went away
		}
		if pre != nil {
			setIdle(pre.Pid(), false)
		}
	}
	m, work, err := create(dir, pre, in)
	in.f.Close() // nothing more comes
	if err != nil {
		report(ready{Error: err.Error(), Class: errdefs.ClassOf(err)})
		return 1
	}
	report(ready{Pid: work.Pid()})
	if err := m.run(work); err != nil {
		fmt.Fprintf(os.Stderr, "monitor %s: %v\n", m.cfg.ID, err)
		return 1
	}
	return 0
}

// dirWaiting tells whether a spare's container directory (or the end of
// its stdin) is there to read.
func dirWaiting() bool {
	fds := []unix.PollFd{{Fd: 0, Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0
}

// awaitDir is a spare monitor's wait for its container's directory (a line
// on stdin). Then stdin becomes /dev/null and stderr the container's
// monitor log, as a monitor started for the container would have them;
// what follows the directory on the old stdin (the caller's answers) is
// read from the reader returned.
func awaitDir() (string, *answers, bool) {
	a := stdinAnswers()
	line, err := a.r.ReadString('\n')
	if err != nil || len(line) < 2 {
		return "", a, false
	}
	dir := line[:len(line)-1]
	if null, err := os.Open(os.DevNull); err == nil {
		unix.Dup2(int(null.Fd()), 0)
		null.Close()
	}
	if logf, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err == nil {
		unix.Dup2(int(logf.Fd()), 2)
		logf.Close()
	}
	return dir, a, true
}

// answers are the caller's answers about the network (Config.Network):
// lines on the monitor's stdin, a spare's after its directory.
type answers struct {
	f *os.File
	r *bufio.Reader
}

// stdinAnswers reads the answers from a copy of stdin that Go's poller
// waits on: a monitor runs on one P, and a goroutine blocked in read(2)
// for an answer would hold it from the others (the create's) until Go's
// sysmon took it back, up to milliseconds later.
func stdinAnswers() *answers {
	f := os.Stdin
	if fd, err := unix.Dup(0); err == nil {
		unix.CloseOnExec(fd)
		unix.SetNonblock(fd, true)
		f = os.NewFile(uintptr(fd), "answers")
	}
	return &answers{f, bufio.NewReader(f)}
}

// workload is what a monitor supervises: a container's init under the
// runtime, or a VM (vm_linux.go).
type workload interface {
	// Pid is the host process of the workload.
	Pid() int
	// Wait returns the workload's exit code once it has ended.
	Wait() (int, error)
	// oomKilled tells, after the end, whether the OOM killer ended it.
	oomKilled() bool
	// finish cleans up after the end.
	finish()
}

// controlled is a workload whose start, signals and pauses go through
// its monitor (a VM's; a runtime container's go through the runtime).
type controlled interface {
	start(net []wire.Iface) error
	// setNet gives the started workload its network as it now is.
	setNet(net []wire.Iface) error
	signal(sig syscall.Signal, all bool) error
	pause(bool) error
	// checkpoint saves the workload's whole state into a directory and,
	// with exit, ends it (vmsave_linux.go).
	checkpoint(dir string, exit bool) error
	// sync writes what the workload holds to its disks.
	sync() error
}

// create makes the container with stdio this process holds, and listens.
// pre (if not nil) is an init started ahead, which create uses or ends;
// answers has the caller's answers about the network (Config.Network).
func create(dir string, pre *runtime.Prestarted, in *answers) (*monitor, workload, error) {
	opts := runtime.CreateOpts{Prestarted: pre}
	defer func() {
		if opts.Prestarted != nil { // not handed to Create
			opts.Prestarted.Close()
		}
	}()
	b, err := os.ReadFile(filepath.Join(dir, configName))
	if err != nil {
		return nil, nil, err
	}
	m := &monitor{dir: dir, attached: map[*attachment]struct{}{}, execs: map[string]*execState{}}
	if err := json.Unmarshal(b, &m.cfg); err != nil {
		return nil, nil, fmt.Errorf("monitor config: %w", err)
	}
	if m.cfg.Log.Path != "" { // else the log driver is none
		if m.log, err = logfile.NewWriter(m.cfg.Log); err != nil {
			return nil, nil, err
		}
	}
	sock := filepath.Join(dir, socketName)
	os.Remove(sock)
	l, err := socketOp(dir, func(p string) (net.Listener, error) { return net.Listen("unix", p) })
	if err != nil {
		return nil, nil, err
	}
	if m.cfg.VM != nil {
		w, err := m.createVM()
		if err != nil {
			l.Close()
			return nil, nil, err
		}
		m.work = w
		go m.serve(l)
		return m, w, nil
	}
	if m.cfg.OCI != nil {
		st, err := newOCIStdio(m.cfg.Tty, m.cfg.OpenStdin)
		if err != nil {
			l.Close()
			return nil, nil, err
		}
		w, err := m.createOCI(st)
		if err == nil {
			if err = st.started(m.cfg.OpenStdin); err != nil {
				syscall.Kill(w.pid, syscall.SIGKILL)
				w.Wait()
				w.finish()
			}
		}
		if err != nil {
			st.close()
			l.Close()
			return nil, nil, err
		}
		m.hold(st, w, l)
		return m, w, nil
	}
	rt, err := runtime.New(m.cfg.RuntimeRoot)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	opts.Bundle = m.cfg.Bundle
	st, err := newStdio(m.cfg.Tty, m.cfg.OpenStdin)
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	opts.Stdio, opts.ConsoleConn = st.child, st.console
	if m.cfg.Network {
		opts.Network = func(pid int) error { return in.network(pid) }
	}
	_, proc, err := rt.Create(m.cfg.ID, opts)
	opts.Prestarted = nil // Create's now
	if err != nil {
		st.close()
		l.Close()
		return nil, nil, err
	}
	if err := st.started(m.cfg.OpenStdin); err != nil {
		proc.Signal(syscall.SIGKILL)
		proc.Wait()
		st.close()
		l.Close()
		return nil, nil, err
	}
	w := &initWorkload{proc: proc, cfg: m.cfg}
	m.hold(st, w, l)
	return m, w, nil
}

// hold takes the created container's stdio and serves on l.
func (m *monitor) hold(st *stdio, w workload, l net.Listener) {
	m.stdin = st.stdin
	if st.master != nil {
		m.resize = ptyResizer(st.master)
	}
	m.work = w
	go m.serve(l)
	m.pump(st.outputs)
}

// ptyResizer sets the size of the terminal whose master is master.
func ptyResizer(master *os.File) func(height, width uint16) error {
	return func(height, width uint16) error {
		return unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: height, Col: width})
	}
}

// initWorkload is a container's init under the runtime.
type initWorkload struct {
	proc *runtime.Process
	cfg  Config
	c    *runtime.Container // loaded at the end
}

func (w *initWorkload) Pid() int           { return w.proc.Pid() }
func (w *initWorkload) Wait() (int, error) { return w.proc.Wait() }

func (w *initWorkload) oomKilled() bool {
	if rt, err := runtime.New(w.cfg.RuntimeRoot); err == nil {
		if w.c, err = rt.Load(w.cfg.ID); err == nil {
			return oomKilled(w.c)
		}
	}
	return false
}

// finish deletes the container from the runtime.
func (w *initWorkload) finish() {
	if w.c != nil {
		if err := w.c.Delete(true); err != nil {
			fmt.Fprintf(os.Stderr, "delete: %v\n", err)
		}
	}
}

// pump starts copying the container's output; finished closes once all of
// it is read.
func (m *monitor) pump(outputs []*os.File) {
	sources := make([]io.Reader, len(outputs))
	for i, f := range outputs {
		sources[i] = f
	}
	m.finished = streams.Pump(sources, m.output)
}

// output logs a chunk and relays it to the attached clients.
func (m *monitor) output(kind byte, p []byte) {
	if m.log != nil {
		if err := m.log.Write(streams.Name(kind), p); err != nil {
			fmt.Fprintf(os.Stderr, "log: %v\n", err)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for a := range m.attached {
		if (kind == streams.Stdout && !a.stdout) || (kind == streams.Stderr && !a.stderr) {
			continue
		}
		if err := a.w.Write(kind, p); err != nil {
			a.conn.Close()
			delete(m.attached, a)
		}
	}
}

// run waits for the container to end, then records how it ended.
func (m *monitor) run(work workload) error {
	code, err := work.Wait()
	if err != nil {
		code = 255
	}
	select {
	case <-m.finished:
	case <-time.After(2 * time.Second): // something outside still holds the pipes
	}
	if m.log != nil {
		m.log.Close()
	}
	exit := Exit{Code: code, At: time.Now().UTC(), OOMKilled: work.oomKilled()}
	b, _ := json.Marshal(exit)
	// The socket goes first: a restarted container's new monitor makes
	// its own at the same path once the daemon hears of this end.
	os.Remove(filepath.Join(m.dir, socketName))
	m.mu.Lock()
	m.done = true
	for a := range m.attached {
		a.conn.Close()
	}
	m.attached = nil
	// Waiters hear of the end now; their connections close when this
	// process exits, after the clean-up below.
	m.exit = append(b, '\n')
	for _, w := range m.waiters {
		w.Write(m.exit)
	}
	m.mu.Unlock()
	work.finish()
	m.awaitExecs()
	werr := writeFileAtomic(m.cfg.ExitFile, b)
	return errors.Join(err, werr)
}

// oomKilled reports whether the kernel's OOM killer hit the container.
func oomKilled(c *runtime.Container) bool {
	n, err := c.OOMKills()
	return err == nil && n > 0
}

// serve answers requests until the container ends. Waiters keep their
// connection open: it brings the exit record, then closes with the monitor.
func (m *monitor) serve(l net.Listener) {
	for {
		conn, err := l.Accept()
		if err != nil {
			return
		}
		go m.handle(conn)
	}
}

func (m *monitor) handle(conn net.Conn) {
	req, br, err := readRequest(conn)
	if err != nil {
		conn.Close()
		return
	}
	switch {
	case req.Attach != nil:
		m.attach(conn, br, *req.Attach)
	case req.Resize != nil:
		err := errors.New("the container has no terminal")
		if m.resize != nil {
			err = m.resize(req.Resize[0], req.Resize[1])
		}
		answer(conn, err)
	case req.Start || req.SetNet || req.Signal != nil || req.Pause != nil || req.Checkpoint != nil || req.Sync:
		c, ok := m.work.(controlled)
		var err error
		switch {
		case !ok:
			err = errors.New("this container is started, signalled and paused through its runtime")
		case req.Start:
			err = c.start(req.Net)
		case req.SetNet:
			err = c.setNet(req.Net)
		case req.Pause != nil:
			err = c.pause(*req.Pause)
		case req.Checkpoint != nil:
			err = c.checkpoint(req.Checkpoint.Dir, req.Checkpoint.Exit)
		case req.Sync:
			err = c.sync()
		default:
			err = c.signal(syscall.Signal(req.Signal.Signal), req.Signal.All)
		}
		answer(conn, err)
	case req.Exec != nil:
		m.exec(conn, br, *req.Exec)
	case req.ExecWait != "":
		m.execWait(conn, req.ExecWait)
	case req.ExecResize != nil:
		m.execResize(conn, *req.ExecResize)
	case req.Execs:
		m.listExecs(conn)
	case req.Wait:
		// The exit record comes when the container ends (run); the
		// connection closes when this process exits.
		m.mu.Lock()
		if m.done {
			conn.Write(m.exit)
		} else {
			m.waiters = append(m.waiters, conn)
		}
		m.mu.Unlock()
	default:
		conn.Close()
	}
}

// answer replies to a request that has no stream: its error, if any.
func answer(conn net.Conn, err error) {
	resp := struct{ Error string }{}
	if err != nil {
		resp.Error = err.Error()
	}
	json.NewEncoder(conn).Encode(resp)
	conn.Close()
}

func (m *monitor) attach(conn net.Conn, br *bufio.Reader, o AttachOpts) {
	a := &attachment{conn: conn, w: streams.NewWriter(conn, m.cfg.Tty), stdout: o.Stdout, stderr: o.Stderr}
	m.mu.Lock()
	if m.done {
		m.mu.Unlock()
		conn.Close()
		return
	}
	if o.Stdout || o.Stderr {
		m.attached[a] = struct{}{}
	}
	if o.Ack {
		// Before any output can reach it (output takes m.mu too).
		conn.Write([]byte{'\n'})
	}
	// StdinOnce closes the container's stdin when its first feeder goes,
	// unless it is a terminal (as docker: a client that detaches from a
	// terminal leaves it open, for the next attach).
	closeStdin := m.cfg.StdinOnce && !m.cfg.Tty
	feed := o.Stdin && m.stdin != nil && !m.stdinUsed
	if feed && closeStdin {
		m.stdinUsed = true
	}
	m.mu.Unlock()
	if !feed {
		if !o.Stdout && !o.Stderr {
			conn.Close()
		}
		return
	}
	io.Copy(m.stdin, br)
	if closeStdin {
		m.stdin.Close()
	}
	if !o.Stdout && !o.Stderr {
		conn.Close()
	}
}

// network has the caller configure the network of init pid
// (Config.Network): a report before the final one, and the caller's
// answer.
func (a *answers) network(pid int) error {
	if err := json.NewEncoder(os.Stdout).Encode(ready{Network: pid}); err != nil {
		return err
	}
	line, err := a.r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("no answer about the network: %w", err)
	}
	if line = strings.TrimSuffix(line, "\n"); line != "" {
		return errors.New(line)
	}
	return nil
}
