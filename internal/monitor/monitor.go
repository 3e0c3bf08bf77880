// Package monitor is the tiny per-container supervisor. The daemon starts
// one monitor process per running container (`tent-monitor monitor DIR`, or `tentd monitor DIR`); the
// monitor creates the container through internal/runtime, so it is the
// parent of the container's init, and then holds the container's stdio: it
// writes the output to the json-file log, relays it to attached clients,
// feeds attached stdin to the container, resizes its terminal, and at the
// end records the exit status in a file. It does not depend on the daemon:
// killing or restarting the daemon leaves containers, logs and exit codes
// intact, and a restarted daemon finds each monitor again by its socket.
//
// The daemon talks to a monitor over DIR/monitor.sock: each connection
// carries one JSON request line (attach, resize or wait).
package monitor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/vm"
	"github.com/tent-project/tent/internal/vm/wire"
	"golang.org/x/sys/unix"
)

// Config is what a monitor needs; the daemon writes it to DIR/monitor.json.
type Config struct {
	ID          string `json:"id"`
	RuntimeRoot string `json:"runtimeRoot"`
	Bundle      string `json:"bundle"`
	// Log is where the output goes (no Path: the log driver is none).
	Log logfile.Options `json:"log"`
	// ExitFile receives the Exit record; it should outlive a reboot.
	ExitFile  string `json:"exitFile"`
	Tty       bool   `json:"tty,omitempty"`
	OpenStdin bool   `json:"openStdin,omitempty"`
	// StdinOnce closes the container's stdin when the first attached
	// client that writes to it finishes (not a terminal's: see attach).
	StdinOnce bool `json:"stdinOnce,omitempty"`
	// VM: the container is a VM this monitor boots (vm_linux.go), not a
	// process of the runtime.
	VM *VMConfig `json:"vm,omitempty"`
	// OCI: an OCI runtime binary makes the container (oci_linux.go),
	// not tent's runtime.
	OCI *OCIRuntime `json:"oci,omitempty"`
	// Network: the caller configures the container's new network
	// namespace while its init sets up (runtime.CreateOpts.Network). The
	// monitor reports the init's pid before it reports the container
	// created, and reads the caller's answer on its stdin: a line, empty
	// once the network is in place, else the reason it is not.
	Network bool `json:"network,omitempty"`
}

// Exit is how a container ended.
type Exit struct {
	Code      int       `json:"code"`
	At        time.Time `json:"at"`
	OOMKilled bool      `json:"oomKilled,omitempty"`
}

// AttachOpts choose the streams of an attachment.
type AttachOpts struct {
	Stdin  bool `json:"stdin,omitempty"`
	Stdout bool `json:"stdout,omitempty"`
	Stderr bool `json:"stderr,omitempty"`
	// Ack: the monitor answers a newline, ahead of the stream, once the
	// attachment is in place, so that nothing the container writes after
	// that is missed (AttachBeforeStart).
	Ack bool `json:"ack,omitempty"`
}

type request struct {
	Attach *AttachOpts `json:"attach,omitempty"`
	Resize *[2]uint16  `json:"resize,omitempty"` // height, width
	Wait   bool        `json:"wait,omitempty"`
	// Exec runs a process in the container (exec_linux.go); the others
	// name an exec by its ID.
	Exec       *ExecRequest `json:"exec,omitempty"`
	ExecWait   string       `json:"execWait,omitempty"`
	ExecResize *execResize  `json:"execResize,omitempty"`
	Execs      bool         `json:"execs,omitempty"`
	// Start and Signal are a VM's (its runtime does them for a process
	// container).
	Start bool `json:"start,omitempty"`
	// Net is a VM's whole network, with Start or SetNet.
	Net []wire.Iface `json:"net,omitempty"`
	// SetNet gives a running VM's guest Net, its network changed.
	SetNet bool       `json:"setNet,omitempty"`
	Signal *signalReq `json:"signal,omitempty"`
	// Pause stops a VM's vCPUs (true) or lets them run again (false).
	Pause *bool `json:"pause,omitempty"`
	// Checkpoint saves a VM's whole state.
	Checkpoint *checkpointReq `json:"checkpoint,omitempty"`
	// Sync has a VM's guest write what it holds to its disks.
	Sync bool `json:"sync,omitempty"`
}

type checkpointReq struct {
	Dir  string `json:"dir"`
	Exit bool   `json:"exit,omitempty"`
}

type signalReq struct {
	Signal int  `json:"signal"`
	All    bool `json:"all,omitempty"`
}

type execResize struct {
	ID   string    `json:"id"`
	Size [2]uint16 `json:"size"` // height, width
}

type ready struct {
	// Network, before the report: the pid of an init whose network the
	// caller is to configure now (Config.Network).
	Network int    `json:"network,omitempty"`
	Pid     int    `json:"pid,omitempty"`
	Error   string `json:"error,omitempty"`
	Class   string `json:"class,omitempty"` // errdefs.ClassOf the error
}

const (
	configName = "monitor.json"
	socketName = "monitor.sock"
	logName    = "monitor.log"
)

// ErrGone means the monitor is not running (the container has ended, or its
// monitor was killed).
var ErrGone = errors.New("monitor: not running")

// Spawn starts the monitor of a container in dir (made if missing) with the
// tent binary exe, and returns once the container is created (its init
// waiting for Start) or has failed to be. The returned function reaps the
// monitor when it ends; callers run it in the background. network, if not
// nil, configures the container's new network namespace while its init
// sets up (given the init's pid; Config.Network): its error fails the
// create.
func Spawn(exe, dir string, c Config, network func(pid int) error) (pid int, reap func(), err error) {
	c.Network = network != nil
	if err := writeConfig(dir, c); err != nil {
		return 0, nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, logName), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return 0, nil, err
	}
	defer logf.Close()
	var in, answers *os.File // the answers' pipe, when there are answers
	if network != nil {
		if in, answers, err = os.Pipe(); err != nil {
			return 0, nil, err
		}
		defer in.Close()
	}
	cmd, out, err := startMonitor(exe, dir, in, logf)
	if err != nil {
		if answers != nil {
			answers.Close()
		}
		return 0, nil, err
	}
	return awaitReady(cmd, out, dir, network, answers)
}

// A Spare is a monitor started ahead of need: its Go runtime is up, and
// it waits on its stdin for the directory of the container it is to
// supervise. Taking one saves a process start on the way to a running
// container. A spare whose daemon goes away reads end-of-file and exits.
type Spare struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out io.ReadCloser
}

// spareCgroupEnv names the cgroup parent a spare's prestarted init waits
// under (runtime.Prestarted.JoinCgroup).
const spareCgroupEnv = "TENT_SPARE_CGROUP"

// StartSpare starts a spare monitor from exe, its prestarted init in a
// cgroup of its own under cgroupParent ("": none).
func StartSpare(exe, cgroupParent string) (*Spare, error) {
	in, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer in.Close()
	cmd, out, err := startMonitor(exe, spareDir, in, nil, spareCgroupEnv+"="+cgroupParent)
	if err != nil {
		w.Close()
		return nil, err
	}
	// A spare's start-up, and its prestarted init's, use only CPU time
	// nothing else wants: they would otherwise slow the container being
	// started or ending beside them (the spare marks its later threads
	// too; Use lifts the mark).
	setIdle(cmd.Process.Pid, true)
	return &Spare{cmd: cmd, in: w, out: out}, nil
}

// Use is Spawn with the spare: it hands over dir and c and waits until
// the container is created. The answers to network go on the spare's
// stdin, after the directory.
func (s *Spare) Use(dir string, c Config, network func(pid int) error) (pid int, reap func(), err error) {
	c.Network = network != nil
	if err := writeConfig(dir, c); err != nil {
		s.Close()
		return 0, nil, err
	}
	setIdle(s.cmd.Process.Pid, false)
	_, err = io.WriteString(s.in, dir+"\n")
	if err != nil || network == nil {
		s.in.Close()
	}
	if err != nil {
		s.cmd.Wait()
		return 0, nil, fmt.Errorf("%w: %v", ErrSpareGone, err)
	}
	var answers io.WriteCloser // s.in, still open for them
	if network != nil {
		answers = s.in
	}
	return awaitReady(s.cmd, s.out, dir, network, answers)
}

// Close ends an unused spare.
func (s *Spare) Close() {
	s.in.Close()
	s.cmd.Wait()
}

// setIdle moves every thread of process pid to the SCHED_IDLE class (idle)
// or back to the normal one. A second pass catches threads started during
// the first; those started later inherit their creator's class. Errors
// (the process is gone) are of no consequence: the class only orders
// CPU time.
func setIdle(pid int, idle bool) {
	attr := unix.SchedAttr{Policy: unix.SCHED_NORMAL}
	if idle {
		attr.Policy = unix.SCHED_IDLE
	}
	for range 2 {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			return
		}
		for _, t := range tasks {
			if tid, err := strconv.Atoi(t.Name()); err == nil {
				_ = unix.SchedSetAttr(tid, &attr, 0)
			}
		}
	}
}

// reapQuietly waits for a monitor to end and reaps it without holding an
// OS thread: cmd.Wait blocks one thread in waitid for every running
// container (~100 KiB of the daemon's memory each, measured with 200
// containers), while a pidfd parks the goroutine on the poller until the
// process is gone. Without pidfds it falls back to cmd.Wait.
func reapQuietly(cmd *exec.Cmd) {
	fd, err := unix.PidfdOpen(cmd.Process.Pid, unix.PIDFD_NONBLOCK)
	if err != nil {
		cmd.Wait()
		return
	}
	f := os.NewFile(uintptr(fd), "pidfd")
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		cmd.Wait()
		return
	}
	rc.Read(func(fd uintptr) bool {
		var info unix.Siginfo
		err := unix.Waitid(unix.P_PIDFD, int(fd), &info, unix.WEXITED|unix.WNOHANG, nil)
		return err != nil || info.Signo != 0 // reaped (or nothing left to reap)
	})
	cmd.Process.Release()
}

// ErrSpareGone means a spare monitor died before it could be used.
var ErrSpareGone = errors.New("spare monitor gone")

// spareDir is the monitor's argument that makes it a spare.
const spareDir = "-"

func writeConfig(dir string, c Config) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	// Read once, by the monitor this write comes before: no rename or sync
	// is needed (the exec root is a tmpfs in production anyway).
	return os.WriteFile(filepath.Join(dir, configName), b, 0o600)
}

// startMonitor starts `exe monitor dir` in a session of its own, with
// stdin and stderr as given (nil: /dev/null), and returns the pipe it
// reports readiness on.
func startMonitor(exe, dir string, stdin, stderr *os.File, env ...string) (*exec.Cmd, io.ReadCloser, error) {
	cmd := exec.Command(exe, "monitor", dir)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	if stderr != nil {
		cmd.Stderr = stderr
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	cmd.Env = append([]string{"GOGC=50", "GOMAXPROCS=1", "PATH=" + os.Getenv("PATH")}, env...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start monitor: %w", err)
	}
	return cmd, out, nil
}

// awaitReady reads a monitor's report that the container is created;
// before it, a request to configure the init's network, which it passes
// to network and answers on answers (closed at the end).
func awaitReady(cmd *exec.Cmd, out io.Reader, dir string, network func(pid int) error, answers io.WriteCloser) (pid int, reap func(), err error) {
	if answers != nil {
		defer answers.Close()
	}
	reap = func() { reapQuietly(cmd) }
	var r ready
	dec := json.NewDecoder(out)
	for {
		r = ready{}
		if err := dec.Decode(&r); err != nil {
			cmd.Process.Kill()
			reap()
			return 0, nil, fmt.Errorf("monitor did not start: %w (see %s)", err, filepath.Join(dir, logName))
		}
		if r.Network == 0 {
			break
		}
		if network == nil { // not asked for: not the report
			continue
		}
		answer := ""
		if err := network(r.Network); err != nil {
			answer = strings.ReplaceAll(err.Error(), "\n", " ")
		}
		// A monitor gone meanwhile fails the read of its report.
		io.WriteString(answers, answer+"\n")
	}
	if r.Error != "" {
		reap()
		return 0, nil, errdefs.WithClass(errors.New(r.Error), r.Class)
	}
	return r.Pid, reap, nil
}

// LogTail is the end of the monitor's log in dir (at most n bytes; what
// a VM's QEMU said on its way out is there).
func LogTail(dir string, n int) string {
	b, _ := os.ReadFile(filepath.Join(dir, logName))
	return string(bytes.TrimSpace(vm.Tail(b, n)))
}

// socketOp runs op (listen or dial) on the monitor socket in dir through
// /proc/self/fd, so that deep directories do not exceed the 108 bytes a
// unix socket address may hold.
func socketOp[T any](dir string, op func(path string) (T, error)) (T, error) {
	return socketAt(dir, socketName, op)
}

// socketAt is socketOp for the socket name in dir.
func socketAt[T any](dir, name string, op func(path string) (T, error)) (T, error) {
	var zero T
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return zero, err
	}
	defer unix.Close(fd)
	return op(fmt.Sprintf("/proc/self/fd/%d/%s", fd, name))
}

// dial connects to the monitor in dir and sends one request.
func dial(dir string, req request) (net.Conn, error) {
	conn, err := socketOp(dir, func(p string) (net.Conn, error) { return net.Dial("unix", p) })
	if err != nil {
		return nil, ErrGone
	}
	b, _ := json.Marshal(req)
	if _, err := conn.Write(append(b, '\n')); err != nil {
		conn.Close()
		return nil, ErrGone
	}
	return conn, nil
}

// Attach connects to the container's stdio. The connection carries the
// output (framed as in package streams unless the container has a
// terminal) and takes stdin; it ends when the container does. Closing the
// write side ends stdin.
func Attach(dir string, o AttachOpts) (*net.UnixConn, error) {
	conn, err := dial(dir, request{Attach: &o})
	if err != nil {
		return nil, err
	}
	return conn.(*net.UnixConn), nil
}

// AttachBeforeStart is Attach for a container about to start: it returns
// once the monitor has the attachment in place, so the connection gets
// all of the container's output.
func AttachBeforeStart(dir string, o AttachOpts) (*net.UnixConn, error) {
	o.Ack = true
	conn, err := Attach(dir, o)
	if err != nil {
		return nil, err
	}
	var ack [1]byte
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != '\n' {
		conn.Close()
		return nil, ErrGone
	}
	return conn, nil
}

// Resize sets the size of the container's terminal.
func Resize(dir string, height, width uint16) error {
	return simpleRequest(dir, request{Resize: &[2]uint16{height, width}})
}

// Start starts a VM's workload (see Config.VM) with its network.
func Start(dir string, net []wire.Iface) error {
	return simpleRequest(dir, request{Start: true, Net: net})
}

// SetNetwork gives a running VM's guest its network as it now is (a
// network connected or disconnected).
func SetNetwork(dir string, net []wire.Iface) error {
	return simpleRequest(dir, request{SetNet: true, Net: net})
}

// Signal sends sig to a VM's workload, with all to every process of it.
func Signal(dir string, sig syscall.Signal, all bool) error {
	return simpleRequest(dir, request{Signal: &signalReq{Signal: int(sig), All: all}})
}

// Checkpoint saves a VM's whole state into cpDir (made by the caller)
// and, with exit, ends the VM.
func Checkpoint(dir, cpDir string, exit bool) error {
	return simpleRequest(dir, request{Checkpoint: &checkpointReq{Dir: cpDir, Exit: exit}})
}

// Sync has a VM's guest write what it holds to its disks.
func Sync(dir string) error { return simpleRequest(dir, request{Sync: true}) }

// Pause stops a VM (pause) or lets it run again.
func Pause(dir string, pause bool) error {
	return simpleRequest(dir, request{Pause: &pause})
}

func simpleRequest(dir string, req request) error {
	conn, err := dial(dir, req)
	if err != nil {
		return err
	}
	defer conn.Close()
	return readError(conn)
}

// A Waiter is a wait for a container's end, registered with its monitor.
type Waiter struct {
	conn     net.Conn // nil: the monitor was not running
	exitFile string
}

// NewWaiter registers a wait with the monitor in dir. Registered before
// the container starts, it cannot miss the end of one that exits at once.
func NewWaiter(dir, exitFile string) *Waiter {
	conn, _ := dial(dir, request{Wait: true})
	return &Waiter{conn: conn, exitFile: exitFile}
}

// Wait blocks until the container ends and returns its exit. gone is
// closed once the monitor has finished too (the container's runtime state
// deleted, the exit file written, the process ended): what follows a
// container's end without needing its files can go on before that. If
// the monitor is not running, the exit file answers.
func (w *Waiter) Wait() (exit Exit, gone <-chan struct{}, err error) {
	done := make(chan struct{})
	if w.conn == nil {
		close(done)
		exit, err = readExitSoon(w.exitFile)
		return exit, done, err
	}
	br := bufio.NewReader(w.conn)
	line, rerr := br.ReadBytes('\n')
	go func() {
		io.Copy(io.Discard, br) // until the monitor exits
		w.conn.Close()
		close(done)
	}()
	if rerr == nil && json.Unmarshal(line, &exit) == nil {
		return exit, done, nil
	}
	// The monitor died without a word (or is one that only closes the
	// connection): what it wrote, if anything, is in the file.
	<-done
	exit, err = ReadExit(w.exitFile)
	return exit, done, err
}

// readExitSoon reads an exit file that a finishing monitor may still be
// writing: it removes its socket before it writes the file.
func readExitSoon(path string) (Exit, error) {
	for range 50 {
		if e, err := ReadExit(path); !errors.Is(err, ErrGone) {
			return e, err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return ReadExit(path)
}

// ReadExit reads an exit file.
func ReadExit(path string) (Exit, error) {
	var e Exit
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return e, ErrGone
	}
	if err != nil {
		return e, err
	}
	return e, json.Unmarshal(b, &e)
}

func writeFileAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// readRequest reads the request line of a connection.
func readRequest(conn net.Conn) (request, *bufio.Reader, error) {
	var req request
	br := bufio.NewReader(conn)
	line, err := br.ReadBytes('\n')
	if err != nil {
		return req, nil, err
	}
	return req, br, json.Unmarshal(line, &req)
}
