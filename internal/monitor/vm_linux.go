package monitor

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/vm/wire"
)

// VMConfig is a VM's part of a monitor's configuration: the QEMU command
// that boots it, the socket of its agent's port, and the workload.
type VMConfig struct {
	Argv        []string     `json:"argv"`
	AgentSocket string       `json:"agentSocket"`
	Console     string       `json:"console,omitempty"` // the guest's console log, quoted on a failed boot
	Process     wire.Process `json:"process"`
}

// bootTimeout bounds a boot to the agent's ready: under TCG a boot takes
// about two seconds.
const bootTimeout = 90 * time.Second

// vmWorkload is a VM: QEMU, a child of this monitor, and the agent in it.
type vmWorkload struct {
	qemu   *exec.Cmd
	conn   net.Conn
	w      *wire.Writer
	exited chan struct{} // QEMU has ended
	// code is the workload's exit status, from the agent (or 137 once
	// the VM is killed); set before ended closes.
	mu     sync.Mutex
	code   *int
	ended  chan struct{}
	closed bool
}

// createVM boots the VM and waits for its agent to have the workload
// ready to start; the VM's output is relayed from then on.
func (m *monitor) createVM() (*vmWorkload, error) {
	vc := m.cfg.VM
	os.Remove(vc.AgentSocket)
	cmd := exec.Command(vc.Argv[0], vc.Argv[1:]...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr // the monitor's log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the VM: %w", err)
	}
	v := &vmWorkload{qemu: cmd, exited: make(chan struct{}), ended: make(chan struct{})}
	go func() { cmd.Wait(); close(v.exited) }()
	fail := func(err error) (*vmWorkload, error) {
		cmd.Process.Kill()
		<-v.exited
		if con, rerr := os.ReadFile(vc.Console); rerr == nil && len(con) > 0 {
			err = fmt.Errorf("%w; the guest's console:\n%s", err, tail(con, 2000))
		}
		return nil, err
	}
	deadline := time.Now().Add(bootTimeout)
	var err error
	for {
		if v.conn, err = net.Dial("unix", vc.AgentSocket); err == nil {
			break
		}
		select {
		case <-v.exited:
			return fail(fmt.Errorf("the VM ended before its agent's port opened (see %s)", logName))
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail(fmt.Errorf("the VM's agent port did not open: %w", err))
		}
	}
	v.w = wire.NewWriter(v.conn)
	p := vc.Process
	p.Terminal, p.OpenStdin = m.cfg.Tty, m.cfg.OpenStdin
	b, _ := json.Marshal(p)
	if err := v.w.Write(wire.Config, b); err != nil {
		return fail(err)
	}
	in := bufio.NewReader(v.conn)
	v.conn.SetReadDeadline(deadline)
	kind, msg, err := wire.Read(in)
	v.conn.SetReadDeadline(time.Time{})
	switch {
	case err != nil:
		return fail(fmt.Errorf("the VM did not boot: %w", err))
	case kind == wire.Error:
		return fail(fmt.Errorf("the VM's agent: %s", msg))
	case kind != wire.Ready:
		return fail(fmt.Errorf("the VM's agent said %q before ready", kind))
	}
	// The output: through pipes, as a process container's, so that the
	// log and attachments are the same code.
	kinds := []byte{wire.Stdout, wire.Stderr}
	if m.cfg.Tty {
		kinds = kinds[:1]
	}
	var outputs []*os.File
	pipes := map[byte]*os.File{}
	for _, k := range kinds {
		r, w, err := os.Pipe()
		if err != nil {
			return fail(err)
		}
		outputs, pipes[k] = append(outputs, r), w
	}
	if m.cfg.OpenStdin {
		m.stdin = &frameWriter{w: v.w}
	}
	if m.cfg.Tty {
		m.resize = func(height, width uint16) error {
			var b [4]byte
			binary.BigEndian.PutUint16(b[:], height)
			binary.BigEndian.PutUint16(b[2:], width)
			return v.w.Write(wire.Resize, b[:])
		}
	}
	m.pump(outputs)
	go v.relay(in, pipes)
	return v, nil
}

// relay takes the agent's frames until the workload's exit.
func (v *vmWorkload) relay(in io.Reader, pipes map[byte]*os.File) {
	defer func() {
		for _, w := range pipes {
			w.Close()
		}
	}()
	for {
		kind, p, err := wire.Read(in)
		if err != nil {
			return // the VM is gone: Wait tells
		}
		switch kind {
		case wire.Stdout, wire.Stderr:
			if w := pipes[kind]; w != nil {
				w.Write(p)
			} else if w := pipes[wire.Stdout]; w != nil {
				w.Write(p)
			}
		case wire.Exit:
			var e wire.ExitStatus
			json.Unmarshal(p, &e)
			v.setCode(e.Code)
			return
		}
	}
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

func (v *vmWorkload) start() error { return v.w.Write(wire.Start, nil) }

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

func (v *vmWorkload) oomKilled() bool { return false }

func (v *vmWorkload) finish() {
	v.qemu.Process.Kill()
	<-v.exited
	v.conn.Close()
}

// frameWriter is the workload's stdin.
type frameWriter struct{ w *wire.Writer }

func (f *frameWriter) Write(p []byte) (int, error) {
	if err := f.w.Write(wire.Stdin, p); err != nil {
		return 0, err
	}
	return len(p), nil
}

func (f *frameWriter) Close() error { return f.w.Write(wire.EOF, nil) }

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
