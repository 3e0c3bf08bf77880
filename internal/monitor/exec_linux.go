package monitor

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/streams"
)

// execState is one exec of this monitor's container.
type execState struct {
	rec    ExecRecord                       // guarded by monitor.mu
	resize func(height, width uint16) error // with a terminal
	done   chan struct{}
	// ephemeral: not saved, and forgotten once waited for.
	ephemeral bool
}

// exec runs req's process and relays its stdio over conn until it ends;
// a client that goes away leaves it running, its output dropped.
func (m *monitor) exec(conn net.Conn, br *bufio.Reader, req ExecRequest) {
	defer conn.Close()
	fail := func(err error) {
		json.NewEncoder(conn).Encode(ready{Error: err.Error(), Class: errdefs.ClassOf(err)})
	}
	m.mu.Lock()
	_, dup := m.execs[req.ID]
	done := m.done
	m.mu.Unlock()
	switch {
	case req.Process == nil || req.ID == "" || dup:
		fail(fmt.Errorf("exec %q: a new ID and a process are needed: %w", req.ID, errdefs.ErrInvalidArgument))
		return
	case done:
		fail(fmt.Errorf("container %s is not running: %w", m.cfg.ID, errdefs.ErrConflict))
		return
	}
	if _, vm := m.work.(*vmWorkload); req.Helper != nil && !vm {
		fail(fmt.Errorf("exec %q: only a VM's agent has helpers: %w", req.ID, errdefs.ErrInvalidArgument))
		return
	}
	tty := req.Process.Terminal
	var p *execProc
	var err error
	if v, ok := m.work.(*vmWorkload); ok {
		p, err = v.exec(req)
	} else if _, ok := m.work.(*ociWorkload); ok {
		p, err = m.ociExec(req)
	} else {
		p, err = m.runtimeExec(req)
	}
	if err != nil {
		fail(err)
		return
	}
	e := &execState{rec: ExecRecord{ID: req.ID, Pid: p.pid, Running: true, Meta: req.Meta}, resize: p.resize, done: make(chan struct{}),
		ephemeral: req.Ephemeral}
	m.mu.Lock()
	m.execs[req.ID] = e
	m.mu.Unlock()
	m.saveExec(e)
	b, _ := json.Marshal(ready{Pid: p.pid})
	conn.Write(append(b, '\n'))

	out := &dropWriter{w: conn}
	w := streams.NewWriter(out, tty)
	var wmu sync.Mutex
	drained := streams.Pump(p.outputs, func(kind byte, b []byte) {
		wmu.Lock()
		w.Write(kind, b)
		wmu.Unlock()
	})
	if p.stdin != nil {
		go func() {
			io.Copy(p.stdin, br)
			if !tty { // a terminal stays open for the process
				p.stdin.Close()
			}
		}()
	}
	code, err := p.wait()
	if err != nil {
		code = 126
	}
	select {
	case <-drained:
	case <-time.After(2 * time.Second): // something else holds the pipes
	}
	p.close()
	m.mu.Lock()
	e.rec.Running, e.rec.ExitCode = false, code
	e.resize = nil
	m.mu.Unlock()
	m.saveExec(e)
	close(e.done)
}

// execProc is a started exec as the monitor relays it, whatever runs it.
type execProc struct {
	pid     int
	outputs []io.Reader
	stdin   io.WriteCloser
	resize  func(height, width uint16) error // nil: no terminal
	wait    func() (int, error)
	close   func()
}

// runtimeExec starts req's process in the container through the runtime.
func (m *monitor) runtimeExec(req ExecRequest) (*execProc, error) {
	rt, err := runtime.New(m.cfg.RuntimeRoot)
	if err != nil {
		return nil, err
	}
	c, err := rt.Load(m.cfg.ID)
	if err != nil {
		return nil, err
	}
	st, err := newStdio(req.Process.Terminal, req.Stdin)
	if err != nil {
		return nil, err
	}
	p, err := c.Exec(req.Process, runtime.ExecOpts{Stdio: st.child, ConsoleConn: st.console})
	if err == nil {
		if err = st.started(req.Stdin); err != nil {
			p.Signal(syscall.SIGKILL)
			p.Wait()
		}
	}
	if err != nil {
		st.close()
		return nil, err
	}
	ep := &execProc{pid: p.Pid(), outputs: outputs(st), stdin: st.stdin, wait: p.Wait, close: st.close}
	if st.master != nil {
		ep.resize = ptyResizer(st.master)
	}
	return ep, nil
}

func outputs(st *stdio) []io.Reader {
	r := make([]io.Reader, len(st.outputs))
	for i, f := range st.outputs {
		r[i] = f
	}
	return r
}

// dropWriter writes to w until a write fails, then drops what it gets.
type dropWriter struct {
	w      io.Writer
	failed bool
}

func (d *dropWriter) Write(p []byte) (int, error) {
	if !d.failed {
		if _, err := d.w.Write(p); err != nil {
			d.failed = true
		}
	}
	return len(p), nil
}

// saveExec writes e's record, for a daemon that asks once the monitor
// has gone.
func (m *monitor) saveExec(e *execState) {
	if e.ephemeral {
		return
	}
	m.mu.Lock()
	b, _ := json.Marshal(e.rec)
	m.mu.Unlock()
	dir := filepath.Join(m.dir, execsDir)
	os.MkdirAll(dir, 0o700)
	if err := writeFileAtomic(filepath.Join(dir, e.rec.ID+".json"), b); err != nil {
		fmt.Fprintf(os.Stderr, "exec %s: %v\n", e.rec.ID, err)
	}
}

// execWait answers once exec id has ended.
func (m *monitor) execWait(conn net.Conn, id string) {
	defer conn.Close()
	m.mu.Lock()
	e, ok := m.execs[id]
	m.mu.Unlock()
	if !ok {
		return // the client reads the file, which says not found
	}
	<-e.done
	m.mu.Lock()
	b, _ := json.Marshal(e.rec)
	if e.ephemeral {
		delete(m.execs, id)
	}
	m.mu.Unlock()
	conn.Write(b)
}

func (m *monitor) execResize(conn net.Conn, r execResize) {
	defer conn.Close()
	m.mu.Lock()
	var resize func(height, width uint16) error
	if e, ok := m.execs[r.ID]; ok {
		resize = e.resize
	}
	m.mu.Unlock()
	err := errors.New("the exec has no terminal")
	if resize != nil {
		err = resize(r.Size[0], r.Size[1])
	}
	resp := struct{ Error string }{}
	if err != nil {
		resp.Error = err.Error()
	}
	json.NewEncoder(conn).Encode(resp)
}

func (m *monitor) listExecs(conn net.Conn) {
	defer conn.Close()
	m.mu.Lock()
	recs := []ExecRecord{}
	for _, e := range m.execs {
		recs = append(recs, e.rec)
	}
	m.mu.Unlock()
	json.NewEncoder(conn).Encode(recs)
}

// awaitExecs gives running execs a moment to record their end once the
// container has ended (its processes are being killed with it).
func (m *monitor) awaitExecs() {
	m.mu.Lock()
	var pending []chan struct{}
	for _, e := range m.execs {
		pending = append(pending, e.done)
	}
	m.mu.Unlock()
	deadline := time.After(time.Second)
	for _, d := range pending {
		select {
		case <-d:
		case <-deadline:
			return
		}
	}
}
