//go:build linux

// Package agent is the init of a tent VM's guest: tent-agent, the only
// program of the VM's initramfs. It loads the kernel modules the
// initramfs carries (virtio transport, disk and serial port), mounts the
// container's disk as the root, takes the workload's configuration from
// the host over the virtio-serial port named tent.agent (package wire),
// and runs the workload: its stdio, terminal, signals and exit are relayed
// over the same port. When the workload ends the agent syncs the disk,
// reports the exit and powers the VM off.
package agent

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/vm/wire"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// PortName is the name of the agent's virtio-serial port.
const PortName = "tent.agent"

// ProbeArg on the kernel's command line: answer ready at once and power
// off (vm.ProbeArg, the host's probe of its accelerator).
const ProbeArg = "tent.probe"

// ModulesList is the initramfs file that lists the modules to load, in
// order, one path per line.
const ModulesList = "/modules"

const newRoot = "/root"

// Main is PID 1 of the guest. It never returns: the VM powers off.
func Main() {
	if len(os.Args) > 1 && os.Args[1] == shimArg {
		shimMain()
	}
	if len(os.Args) > 1 && os.Args[1] == copierArg {
		os.Exit(copier.Main(os.Args[2:]))
	}
	err := run()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tent-agent: %v\n", err)
	}
	unix.Sync()
	unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	select {}
}

func run() error {
	for _, m := range []struct{ fs, dir string }{{"devtmpfs", "/dev"}, {"proc", "/proc"}, {"sysfs", "/sys"}} {
		os.MkdirAll(m.dir, 0o755)
		if err := unix.Mount(m.fs, m.dir, m.fs, 0, ""); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	if err := loadModules(""); err != nil {
		return err
	}
	port, err := openPort()
	if err != nil {
		return err
	}
	w := wire.NewWriter(port)
	in := bufio.NewReader(port)
	fail := func(err error) error {
		w.Write(wire.Error, failure(err))
		return err
	}
	// Until the host's side of the port is connected, reads end at once
	// (virtio_console answers end-of-file): wait for the configuration.
	var f wire.Frame
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if f, err = wire.Read(in); err == nil && f.Kind == wire.Hold {
			// A template's boot: the host saves the VM as it waits here,
			// and each VM started from it goes on with this read.
			if err = w.Write(wire.Ready, nil); err != nil {
				return err
			}
			continue
		}
		if err != io.EOF || time.Now().After(deadline) {
			break
		}
	}
	if cmdline, _ := os.ReadFile("/proc/cmdline"); err == nil && strings.Contains(string(cmdline), ProbeArg) {
		return w.Write(wire.Ready, nil) // the host's probe of its accelerator: booted
	}
	if err != nil || f.Kind != wire.Config {
		return fail(fmt.Errorf("no configuration from the host (%c): %v", f.Kind, err))
	}
	var p wire.Process
	if err := json.Unmarshal(f.P, &p); err != nil {
		return fail(fmt.Errorf("configuration: %w", err))
	}
	setClockAndSeed(&p)
	if err := loadModules("disk"); err != nil {
		return fail(err)
	}
	if err := mountRoot(&p); err != nil {
		return fail(err)
	}
	if lo, err := netlink.LinkByName("lo"); err == nil {
		netlink.LinkSetUp(lo)
	}
	main, err := prepare(&p)
	if err == nil {
		err = main.cmd.Err // a missing program fails the create, as a runtime's does
	}
	if err == nil {
		err = asPID1(main.cmd)
	}
	if err != nil {
		return fail(err)
	}
	a := &agent{w: w, procs: map[uint32]*process{0: main}, started: make(chan struct{})}
	w.Write(wire.Ready, nil)
	go a.serve(in)
	<-a.started
	if main.startErr != nil {
		// The engine has said ready: the failure is the workload's exit,
		// as a runtime's exec failure is (docker's 127 for "not found").
		fmt.Fprintln(main.st.stderrForErrors, main.startErr)
		main.st.closeChild()
		a.relayOutput(0, main.st)
		main.st.drain()
		return report(w, 127)
	}
	return report(w, main.wait())
}

// agent is the guest's processes: the workload (0) and the execs.
type agent struct {
	w       *wire.Writer
	mu      sync.Mutex
	procs   map[uint32]*process
	started chan struct{} // the workload has been started (or failed to)
	early   []wire.Frame  // the workload's input before its start
	pidns   int           // a pidfd of the workload, whose PID namespace execs join (0: none yet)
}

// startIn starts cmd: an exec in the workload's PID namespace (entered
// by a thread of its own, which then ends: setns changes the namespace
// of the calling thread's children), the workload in a new one.
func (a *agent) startIn(cmd *exec.Cmd) error {
	a.mu.Lock()
	ns := a.pidns
	a.mu.Unlock()
	if ns == 0 {
		return cmd.Start()
	}
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := unix.Setns(ns, unix.CLONE_NEWPID); err != nil {
			done <- fmt.Errorf("enter the workload's PID namespace: %w", err)
			return
		}
		done <- cmd.Start()
	}()
	return <-done
}

// process is one of the guest's processes with its stdio.
type process struct {
	cmd      *exec.Cmd
	st       *stdio
	startErr error
	running  bool
}

// wait waits for the process and its output; it returns its status in
// docker's terms.
func (p *process) wait() int {
	err := p.cmd.Wait()
	p.st.drain()
	if ee, ok := err.(*exec.ExitError); ok {
		ws := ee.Sys().(syscall.WaitStatus)
		if ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ws.ExitStatus()
	} else if err != nil {
		return 255
	}
	return 0
}

// start runs p and relays its output as process id; the workload's
// PID namespace is kept for the execs.
func (a *agent) start(id uint32, p *process) error {
	if err := a.startIn(p.cmd); err != nil {
		return err
	}
	if id == 0 {
		fd, err := unix.PidfdOpen(p.cmd.Process.Pid, 0)
		if err != nil {
			return fmt.Errorf("the workload's PID namespace: %w", err)
		}
		a.mu.Lock()
		a.pidns = fd
		a.mu.Unlock()
	}
	p.st.closeChild()
	a.relayOutput(id, p.st)
	a.mu.Lock()
	p.running = true
	a.mu.Unlock()
	return nil
}

// serve applies what the host sends.
func (a *agent) serve(in io.Reader) {
	for {
		f, err := wire.Read(in)
		if err != nil {
			return
		}
		switch {
		case f.Kind == wire.Start && f.ID == 0:
			a.mu.Lock()
			main, early := a.procs[0], a.early
			a.early = nil
			a.mu.Unlock()
			main.startErr = a.start(0, main)
			close(a.started)
			for _, e := range early {
				a.input(e)
			}
		case f.Kind == wire.Exec && f.ID != 0:
			go a.exec(f)
		case f.Kind == wire.Sync:
			go func(id uint32) {
				unix.Sync()
				a.w.WriteID(wire.Done, id, nil)
			}(f.ID)
		case f.Kind == wire.Net:
			go func(f wire.Frame) {
				var ifaces []wire.Iface
				err := json.Unmarshal(f.P, &ifaces)
				if err == nil {
					err = configureNetwork(ifaces)
				}
				var answer []byte
				if err != nil {
					answer = failure(fmt.Errorf("the guest's network: %w", err))
				}
				a.w.WriteID(wire.Done, f.ID, answer)
			}(f)
		default:
			a.mu.Lock()
			p := a.procs[f.ID]
			if f.ID == 0 && p != nil && !p.running {
				a.early = append(a.early, f) // applied at the start
				p = nil
			}
			a.mu.Unlock()
			if p != nil {
				a.input(f)
			}
		}
	}
}

// exec starts an exec and reports its end.
func (a *agent) exec(f wire.Frame) {
	var pp wire.Process
	if err := json.Unmarshal(f.P, &pp); err != nil {
		a.w.WriteID(wire.Error, f.ID, failure(err))
		return
	}
	p, err := prepare(&pp)
	if err == nil {
		a.mu.Lock()
		a.procs[f.ID] = p
		a.mu.Unlock()
		err = a.start(f.ID, p)
	}
	if err != nil {
		a.mu.Lock()
		delete(a.procs, f.ID)
		a.mu.Unlock()
		if p != nil {
			p.st.closeChild()
		}
		a.w.WriteID(wire.Error, f.ID, failure(err))
		return
	}
	var pid [4]byte
	binary.BigEndian.PutUint32(pid[:], uint32(p.cmd.Process.Pid))
	a.w.WriteID(wire.Ready, f.ID, pid[:])
	code := p.wait()
	a.mu.Lock()
	delete(a.procs, f.ID)
	a.mu.Unlock()
	b, _ := json.Marshal(wire.ExitStatus{Code: code})
	a.w.WriteID(wire.Exit, f.ID, b)
}

// failure is the payload of an Error frame for err.
func failure(err error) []byte {
	b, _ := json.Marshal(wire.Failure{Message: err.Error(), Class: errdefs.ClassOf(err)})
	return b
}

// report syncs the disk, then tells the host how the workload ended.
func report(w *wire.Writer, code int) error {
	unix.Kill(-1, unix.SIGKILL) // what the workload left running
	unix.Sync()
	b, _ := json.Marshal(wire.ExitStatus{Code: code})
	return w.Write(wire.Exit, b)
}

// stdio is the workload's standard streams as the agent holds them.
type stdio struct {
	pty             *os.File // the master, with a terminal
	stdin           io.WriteCloser
	child           []*os.File
	outputs         []*os.File
	kinds           []byte
	done            chan struct{}
	pending         int
	stderrForErrors *os.File
}

func (s *stdio) closeChild() {
	for _, f := range s.child {
		f.Close()
	}
}

// drain waits until the workload's output has all been relayed.
func (s *stdio) drain() {
	for i := 0; i < s.pending; i++ {
		<-s.done
	}
}

func prepare(p *wire.Process) (*process, error) {
	cmd, st, err := prepareCmd(p)
	if err != nil {
		return nil, err
	}
	return &process{cmd: cmd, st: st}, nil
}

func prepareCmd(p *wire.Process) (*exec.Cmd, *stdio, error) {
	var cmd *exec.Cmd
	switch {
	case p.Helper != nil:
		var err error
		if cmd, err = helperCmd(p); err != nil {
			return nil, nil, err
		}
	case len(p.Args) == 0:
		return nil, nil, errors.New("no command")
	default:
		cmd = &exec.Cmd{Path: p.Args[0], Args: p.Args, Env: p.Env, Dir: p.Cwd}
		if !strings.Contains(p.Args[0], "/") {
			lp, err := lookPath(p.Args[0], p.Env)
			if err != nil {
				cmd.Err = err // as the runtime says it, at the start
			}
			cmd.Path = lp
		}
	}
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true,
		Credential: &syscall.Credential{Uid: p.UID, Gid: p.GID, Groups: p.AdditionalGids}}
	for _, r := range p.Rlimits {
		if n, ok := rlimits[r.Type]; ok {
			unix.Setrlimit(n, &unix.Rlimit{Cur: r.Soft, Max: r.Hard}) // inherited by the workload
		}
	}
	st := &stdio{done: make(chan struct{}, 2)}
	if p.Terminal {
		master, slave, err := openPty()
		if err != nil {
			return nil, nil, err
		}
		st.pty, st.stdin = master, master
		cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
		cmd.SysProcAttr.Setctty = true
		st.child = []*os.File{slave}
		st.outputs, st.kinds = []*os.File{master}, []byte{wire.Stdout}
		st.stderrForErrors = slave
		return cmd, st, nil
	}
	for _, kind := range []byte{wire.Stdout, wire.Stderr} {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		if kind == wire.Stdout {
			cmd.Stdout = w
		} else {
			cmd.Stderr = w
			st.stderrForErrors = w
		}
		st.child = append(st.child, w)
		st.outputs, st.kinds = append(st.outputs, r), append(st.kinds, kind)
	}
	if p.OpenStdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, nil, err
		}
		cmd.Stdin, st.stdin = r, w
		st.child = append(st.child, r)
	}
	st.child = append(st.child, cmd.ExtraFiles...) // a helper's root, closed here once it started
	return cmd, st, nil
}

var rlimits = map[string]int{"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_STACK": unix.RLIMIT_STACK, "RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK}

func lookPath(name string, env []string) (string, error) {
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, e := range env {
		if v, ok := strings.CutPrefix(e, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH: %w", name, errdefs.ErrNotFound)
}

func openPty() (master, slave *os.File, err error) {
	master, err = os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, err
	}
	n, err := unix.IoctlGetInt(int(master.Fd()), unix.TIOCGPTN)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		return nil, nil, err
	}
	return master, slave, nil
}

// relayOutput starts relaying a process's output to the host.
func (a *agent) relayOutput(id uint32, st *stdio) {
	for i, f := range st.outputs {
		st.pending++
		go func(f *os.File, kind byte) {
			buf := make([]byte, 32<<10)
			for {
				n, err := f.Read(buf)
				if n > 0 {
					a.w.WriteID(kind, id, buf[:n])
				}
				if err != nil {
					st.done <- struct{}{}
					return
				}
			}
		}(f, st.kinds[i])
	}
}

// input applies one frame to its process: stdin, its end, a signal, a
// terminal size.
func (a *agent) input(f wire.Frame) {
	a.mu.Lock()
	proc := a.procs[f.ID]
	a.mu.Unlock()
	if proc == nil {
		return
	}
	st, p := proc.st, f.P
	switch f.Kind {
	case wire.Stdin:
		if st.stdin != nil {
			st.stdin.Write(p)
		}
	case wire.EOF:
		if st.stdin != nil && st.pty == nil {
			st.stdin.Close()
		} else if st.pty != nil {
			st.pty.Write([]byte{4}) // ^D: end of input on a terminal
		}
	case wire.Signal:
		if len(p) >= 1 {
			if len(p) >= 2 && p[1] == 1 {
				unix.Kill(-1, unix.Signal(p[0]))
			} else if proc.cmd.Process != nil {
				proc.cmd.Process.Signal(unix.Signal(p[0]))
			}
		}
	case wire.Resize:
		if st.pty != nil && len(p) == 4 {
			ws := &unix.Winsize{Row: binary.BigEndian.Uint16(p), Col: binary.BigEndian.Uint16(p[2:])}
			unix.IoctlSetWinsize(int(st.pty.Fd()), unix.TIOCSWINSZ, ws)
		}
	}
}
