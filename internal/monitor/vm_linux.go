package monitor

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/vm"
	"github.com/tent-project/tent/internal/vm/wire"
)

// VMConfig is a VM's part of a monitor's configuration: the QEMU command
// that boots it (run in the monitor's directory), the socket of its
// agent's port (a name in that directory: socket paths are short), and
// the workload.
type VMConfig struct {
	Argv        []string `json:"argv"`
	AgentSocket string   `json:"agentSocket"`
	QMPSocket   string   `json:"qmpSocket,omitempty"` // QEMU's machine protocol, also a name in the directory
	// Cgroup holds QEMU, with the container's CPU limits: what the VM
	// costs the host is counted there (docker stats).
	Cgroup string `json:"cgroup,omitempty"`
	// NetNS: QEMU starts in a network namespace of its own, where the
	// engine wires the container's networks (by QEMU's pid).
	NetNS     bool                  `json:"netns,omitempty"`
	Resources *specs.LinuxResources `json:"resources,omitempty"`
	Console   string                `json:"console,omitempty"` // the guest's console log, quoted on a failed boot
	Process   wire.Process          `json:"process"`
	// Restore: boot from the checkpoint in this directory (its saved
	// state; the workload runs on), not afresh.
	Restore string `json:"restore,omitempty"`
	// Disk is the container's disk (in Argv too): a checkpoint keeps a
	// copy, which a restore puts back.
	Disk string `json:"disk,omitempty"`
	// Template: Argv starts the VM from this template (vm.Host.Template):
	// the monitor loads its state, then configures the agent as after a
	// boot.
	Template string `json:"template,omitempty"`
}

// bootTimeout bounds a boot to the agent's ready: under TCG a boot takes
// about two seconds.
const bootTimeout = 90 * time.Second

// vmWorkload is a VM: QEMU, a child of this monitor, and the agent in it.
type vmWorkload struct {
	cg     cgroups.Manager // nil: none
	dir    string          // the monitor's, where QEMU runs
	qmp    string          // the QMP socket's name there
	disk   string          // the container's disk
	qemu   *exec.Cmd
	conn   net.Conn
	w      *wire.Writer
	exited chan struct{} // QEMU has ended
	// code is the workload's exit status, from the agent (or 137 once
	// the VM is killed); set before ended closes.
	mu    sync.Mutex
	code  *int
	ended chan struct{}
	// procs are the processes whose frames come: the workload (0) and
	// the execs, by the numbers this monitor gives them.
	procs  map[uint32]*vmProc
	nextID uint32
	// asks are the Sync and Net requests the agent has not answered, by
	// id: each gets the answer's payload (a Failure, or empty).
	asks map[uint32]chan []byte
	// restored: the VM goes on from a checkpoint; start lets it run.
	restored bool
}

// vmProc is one of the guest's processes as the host sees it.
type vmProc struct {
	pipes   map[byte]*os.File // where its output goes
	started chan struct{}     // an exec's: closed once it runs or failed
	pid     int
	err     error
	exit    chan int
}

func (p *vmProc) closePipes() {
	for _, w := range p.pipes {
		w.Close()
	}
}

// outputPipes makes the pipes of a process's output: stdout and stderr,
// or one with a terminal.
func outputPipes(tty bool) (outputs []*os.File, pipes map[byte]*os.File, err error) {
	kinds := []byte{wire.Stdout, wire.Stderr}
	if tty {
		kinds = kinds[:1]
	}
	pipes = map[byte]*os.File{}
	for _, k := range kinds {
		r, w, err := os.Pipe()
		if err != nil {
			for _, f := range outputs {
				f.Close()
			}
			for _, f := range pipes {
				f.Close()
			}
			return nil, nil, err
		}
		outputs, pipes[k] = append(outputs, r), w
	}
	return outputs, pipes, nil
}

// createVM boots the VM and waits for its agent to have the workload
// ready to start; the VM's output is relayed from then on.
func (m *monitor) createVM() (*vmWorkload, error) {
	vc := m.cfg.VM
	os.Remove(filepath.Join(m.dir, vc.AgentSocket))
	argv, nextID := vc.Argv, uint32(0)
	if vc.Restore != "" {
		more, next, err := restoreArgs(vc.Restore, vc.Disk)
		if err != nil {
			return nil, err
		}
		argv, nextID = append(slices.Clone(argv), more...), next-1
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = m.dir
	qemuErr := &bytes.Buffer{}                                             // quoted if the boot fails
	cmd.Stdout, cmd.Stderr = os.Stderr, io.MultiWriter(os.Stderr, qemuErr) // the monitor's log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if vc.NetNS {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWNET
	}
	err := cmd.Start()
	if err != nil {
		return nil, fmt.Errorf("start the VM: %w", err)
	}
	v := &vmWorkload{qemu: cmd, exited: make(chan struct{}), ended: make(chan struct{}), procs: map[uint32]*vmProc{},
		dir: m.dir, qmp: vc.QMPSocket, disk: vc.Disk, nextID: nextID, restored: vc.Restore != ""}
	go func() { cmd.Wait(); close(v.exited) }()
	end := func() { // for a failed create
		cmd.Process.Kill()
		<-v.exited
		if v.cg != nil {
			v.cg.Destroy()
		}
	}
	if vc.Cgroup != "" {
		if v.cg, err = cgroups.New(vc.Cgroup); err == nil {
			if err = v.cg.Apply(cmd.Process.Pid); err == nil && vc.Resources != nil {
				err = v.cg.Set(vc.Resources)
			}
		}
		if err != nil {
			end()
			return nil, fmt.Errorf("the VM's cgroup %s: %w", vc.Cgroup, err)
		}
	}
	fail := func(err error) (*vmWorkload, error) {
		end()
		if qemuErr.Len() > 0 {
			err = fmt.Errorf("%w: %s", err, vm.Tail(bytes.TrimSpace(qemuErr.Bytes()), 2000))
		}
		if con, rerr := os.ReadFile(vc.Console); rerr == nil && len(con) > 0 {
			err = fmt.Errorf("%w; the guest's console:\n%s", err, vm.Tail(con, 2000))
		}
		return nil, err
	}
	deadline := time.Now().Add(bootTimeout)
	for {
		if v.conn, err = socketAt(m.dir, vc.AgentSocket, func(p string) (net.Conn, error) { return net.Dial("unix", p) }); err == nil {
			break
		}
		select {
		case <-v.exited:
			return fail(errors.New("the VM ended before its agent's port opened"))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the VM's agent port did not open: %w", err))
		}
	}
	v.w = wire.NewWriter(v.conn)
	in := bufio.NewReader(v.conn)
	if v.restored {
		// The engine wires the VM's tap once Spawn returns: QEMU has
		// made it when its machine protocol answers (its main loop runs).
		if err := v.machineReady(deadline); err != nil {
			return fail(err)
		}
	} else {
		if vc.Template != "" {
			err := v.machineReady(deadline)
			if err == nil {
				err = vm.StartFromTemplate(m.dir, vc.QMPSocket, vc.Template, time.Until(deadline))
			}
			if err != nil {
				return fail(err)
			}
		}
		if err := v.configure(m.cfg, in, deadline); err != nil {
			if f, ok := err.(agentFailure); ok { // the agent's own words: no console to quote
				end()
				return nil, f.err
			}
			return fail(err)
		}
	}
	// The output: through pipes, as a process container's, so that the
	// log and attachments are the same code.
	outputs, pipes, err := outputPipes(m.cfg.Tty)
	if err != nil {
		return fail(err)
	}
	v.procs[0] = &vmProc{pipes: pipes}
	if m.cfg.OpenStdin {
		m.stdin = &frameWriter{w: v.w}
	}
	if m.cfg.Tty {
		m.resize = v.resizer(0)
	}
	m.pump(outputs)
	go v.relay(in)
	return v, nil
}

// agentFailure is the agent's refusal of the workload (its Error frame).
type agentFailure struct{ err error }

func (f agentFailure) Error() string { return f.err.Error() }

// configure gives a fresh VM's agent the workload and waits for its
// ready.
func (v *vmWorkload) configure(cfg Config, in *bufio.Reader, deadline time.Time) error {
	p := cfg.VM.Process
	p.Terminal, p.OpenStdin = cfg.Tty, cfg.OpenStdin
	p.Seed = make([]byte, 32)
	rand.Read(p.Seed)
	if cfg.VM.Template != "" {
		// Its guest runs (a booted one's reads its configuration only
		// once booted, and has the clock of its boot, from the RTC).
		p.Time = time.Now().UnixNano()
	}
	b, _ := json.Marshal(p)
	if err := v.w.Write(wire.Config, b); err != nil {
		return err
	}
	v.conn.SetReadDeadline(deadline)
	f, err := wire.Read(in)
	v.conn.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		return fmt.Errorf("the VM did not boot: %w", err)
	case f.Kind == wire.Error:
		return agentFailure{agentError(f.P)}
	case f.Kind != wire.Ready:
		return fmt.Errorf("the VM's agent said %q before ready", f.Kind)
	}
	return nil
}

// resizer sets the terminal size of process id.
func (v *vmWorkload) resizer(id uint32) func(height, width uint16) error {
	return func(height, width uint16) error {
		var b [4]byte
		binary.BigEndian.PutUint16(b[:], height)
		binary.BigEndian.PutUint16(b[2:], width)
		return v.w.WriteID(wire.Resize, id, b[:])
	}
}

// relay takes the agent's frames until the workload's exit.
func (v *vmWorkload) relay(in io.Reader) {
	defer func() {
		v.mu.Lock()
		for _, p := range v.procs {
			p.closePipes()
		}
		v.mu.Unlock()
	}()
	for {
		f, err := wire.Read(in)
		if err != nil {
			return // the VM is gone: Wait tells
		}
		v.mu.Lock()
		p := v.procs[f.ID]
		if done := v.asks[f.ID]; f.Kind == wire.Done && done != nil {
			delete(v.asks, f.ID)
			done <- f.P
		}
		v.mu.Unlock()
		if p == nil {
			continue
		}
		switch f.Kind {
		case wire.Stdout, wire.Stderr:
			if w := p.pipes[f.Kind]; w != nil {
				w.Write(f.P)
			} else if w := p.pipes[wire.Stdout]; w != nil {
				w.Write(f.P)
			}
		case wire.Ready: // an exec runs
			if len(f.P) == 4 {
				p.pid = int(binary.BigEndian.Uint32(f.P))
			}
			close(p.started)
		case wire.Error: // an exec could not start
			p.err = agentError(f.P)
			v.forget(f.ID)
			close(p.started)
		case wire.Exit:
			var e wire.ExitStatus
			json.Unmarshal(f.P, &e)
			if f.ID == 0 {
				v.setCode(e.Code)
				return
			}
			v.forget(f.ID)
			p.closePipes()
			p.exit <- e.Code
		}
	}
}

func (v *vmWorkload) forget(id uint32) {
	v.mu.Lock()
	delete(v.procs, id)
	v.mu.Unlock()
}

// exec starts req's process in the guest through the agent.
func (v *vmWorkload) exec(req ExecRequest) (*execProc, error) {
	sp := req.Process
	wp := wire.FromSpec(sp)
	wp.OpenStdin = req.Stdin
	wp.Helper = req.Helper
	outputs, pipes, err := outputPipes(sp.Terminal)
	if err != nil {
		return nil, err
	}
	p := &vmProc{pipes: pipes, started: make(chan struct{}), exit: make(chan int, 1)}
	v.mu.Lock()
	v.nextID++
	id := v.nextID
	v.procs[id] = p
	v.mu.Unlock()
	closeReaders := func() {
		for _, r := range outputs {
			r.Close()
		}
	}
	b, _ := json.Marshal(wp)
	if err := v.w.WriteID(wire.Exec, id, b); err != nil {
		v.forget(id)
		p.closePipes()
		closeReaders()
		return nil, err
	}
	select {
	case <-p.started:
	case <-v.exited:
		v.forget(id)
		p.err = errors.New("the VM has ended")
	}
	if p.err != nil {
		p.closePipes()
		closeReaders()
		return nil, p.err
	}
	ep := &execProc{pid: p.pid, close: closeReaders}
	for _, r := range outputs {
		ep.outputs = append(ep.outputs, r)
	}
	if req.Stdin {
		ep.stdin = &frameWriter{w: v.w, id: id}
	}
	if sp.Terminal {
		ep.resize = v.resizer(id)
	}
	ep.wait = func() (int, error) {
		select {
		case code := <-p.exit:
			return code, nil
		case <-v.ended:
		case <-v.exited:
		}
		select { // its exit may have come just before the workload's
		case code := <-p.exit:
			return code, nil
		case <-time.After(100 * time.Millisecond):
			return 137, nil // ended with the VM
		}
	}
	return ep, nil
}

func (v *vmWorkload) setCode(code int) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.code == nil {
		v.code = &code
		close(v.ended)
	}
}

func (v *vmWorkload) Pid() int { return v.qemu.Process.Pid }

// Wait returns the workload's exit code; the VM, which powers itself
// off, is given a few seconds and then ended.
func (v *vmWorkload) Wait() (int, error) {
	select {
	case <-v.ended:
		select {
		case <-v.exited:
		case <-time.After(5 * time.Second):
			v.qemu.Process.Kill()
			<-v.exited
		}
	case <-v.exited:
		v.setCode(255) // no exit from the agent: the VM died
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	return *v.code, nil
}

// start gives the guest its network, then starts the workload; a
// restored VM, whose guest has both, runs on, given its network as the
// engine wired it this time.
func (v *vmWorkload) start(net []wire.Iface) error {
	if v.restored {
		if err := v.resume(); err != nil {
			return err
		}
		return v.setNet(net)
	}
	if len(net) > 0 {
		if err := v.setNet(net); err != nil {
			return err
		}
	}
	return v.w.Write(wire.Start, nil)
}

// setNet gives the guest its whole network (the agent makes its NICs
// match it) and waits for the agent to have done so.
func (v *vmWorkload) setNet(net []wire.Iface) error {
	b, _ := json.Marshal(net)
	return v.ask(wire.Net, b, "configure its network", 30*time.Second)
}

// signal passes sig to the workload; SIGKILL ends the VM itself, as it
// ends a container's every process.
func (v *vmWorkload) signal(sig syscall.Signal, all bool) error {
	select {
	case <-v.exited:
		return errors.New("the VM has ended")
	default:
	}
	if sig == syscall.SIGKILL {
		v.setCode(128 + int(sig))
		return v.qemu.Process.Kill()
	}
	b := []byte{byte(sig), 0}
	if all {
		b[1] = 1
	}
	return v.w.Write(wire.Signal, b)
}

// pause stops or continues the VM's vCPUs through QEMU's machine
// protocol (QMP): a paused VM keeps its memory and devices, as a frozen
// cgroup keeps its processes.
func (v *vmWorkload) pause(pause bool) error {
	q, err := vm.DialQMP(v.dir, v.qmp)
	if err != nil {
		return err
	}
	defer q.Close()
	cmd := "cont"
	if pause {
		cmd = "stop"
	}
	return q.Call(cmd, nil, nil)
}

// sync has the agent write what the guest holds (its page cache) to its
// disks, so that the disk read from the host is the guest's file system
// as it is (cp, diff, commit of a running VM).
func (v *vmWorkload) sync() error {
	return v.ask(wire.Sync, nil, "write its files to its disk", 30*time.Second)
}

// ask sends the agent a request of kind with payload p and waits up to
// timeout for its answer; what is a failure's words for the request.
func (v *vmWorkload) ask(kind byte, p []byte, what string, timeout time.Duration) error {
	done := make(chan []byte, 1)
	v.mu.Lock()
	v.nextID++
	id := v.nextID
	if v.asks == nil {
		v.asks = map[uint32]chan []byte{}
	}
	v.asks[id] = done
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		delete(v.asks, id)
		v.mu.Unlock()
	}()
	if err := v.w.WriteID(kind, id, p); err != nil {
		return err
	}
	select {
	case answer := <-done:
		if len(answer) == 0 {
			return nil
		}
		return agentError(answer)
	case <-v.exited:
		return errors.New("the VM has ended")
	case <-time.After(timeout):
		return fmt.Errorf("the guest did not %s within %s (is the VM paused?)", what, timeout)
	}
}

func (v *vmWorkload) oomKilled() bool { return false }

func (v *vmWorkload) finish() {
	v.qemu.Process.Kill()
	<-v.exited
	v.conn.Close()
	if v.cg != nil {
		if err := v.cg.Destroy(); err != nil {
			fmt.Fprintf(os.Stderr, "the VM's cgroup: %v\n", err)
		}
	}
}

// frameWriter is a process's stdin.
type frameWriter struct {
	w  *wire.Writer
	id uint32
}

func (f *frameWriter) Write(p []byte) (int, error) {
	if err := f.w.WriteID(wire.Stdin, f.id, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (f *frameWriter) Close() error { return f.w.WriteID(wire.EOF, f.id, nil) }

// agentError is the error an Error frame carries, with its class.
func agentError(p []byte) error {
	var f wire.Failure
	if json.Unmarshal(p, &f) != nil {
		f.Message = string(p)
	}
	return errdefs.WithClass(errors.New(f.Message), f.Class)
}
