// Package execs is the engine's docker exec: exec instances (create,
// inspect, start with its stream relay, resize), their records taken
// back from a re-adopted container's task, and the process an exec runs.
// The process itself is the task's (its supervisor holds its stdio and
// keeps its exit code), so it outlives the engine; the engine's
// containers are asked for through the Containers interface.
package execs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/userdb"
)

// execProc is one `docker exec`. Its process belongs to the container's
// task (its supervisor holds the stdio and keeps the exit code), so it
// outlives the daemon; the daemon relays the stream and keeps this record
// (restored from the task's by restoreExecs).
type execProc struct {
	id, containerID string
	cfg             container.ExecCreateRequest
	detachKeys      []byte // end an attached terminal session, leaving the process

	mu       sync.Mutex
	started  bool
	running  bool
	pid      int
	exitCode *int
	// ended is closed once the exit code is recorded.
	ended chan struct{}
}

// Containers is what the manager needs of the engine's containers.
type Containers interface {
	// Target is the container ref names, as an exec sees it.
	Target(ref string) (Target, error)
	// Event publishes an event of container id.
	Event(id string, action events.Action, attrs map[string]string)
}

// Target is a container as an exec sees it: its ID, whether it runs (a
// paused one does), its current run's task and the init's host PID.
type Target struct {
	ID              string
	Running, Paused bool
	Task            task.Task
	Pid             int
}

// Manager keeps the execs of the engine's containers.
type Manager struct {
	c     Containers
	mu    sync.Mutex
	execs map[string]*execProc
}

// New makes the manager.
func New(c Containers) *Manager {
	return &Manager{c: c, execs: map[string]*execProc{}}
}

func (s *Manager) getExec(id string) (*execProc, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.execs[id]
	if !ok {
		return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return e, nil
}

// ExecCreate registers a command to run in a running container.
func (s *Manager) ExecCreate(ref string, cfg container.ExecCreateRequest) (string, error) {
	c, err := s.c.Target(ref)
	if err != nil {
		return "", err
	}
	if len(cfg.Cmd) == 0 {
		return "", fmt.Errorf("No exec command specified: %w", errdefs.ErrInvalidArgument)
	}
	if c.Paused {
		return "", fmt.Errorf("Container %s is paused, unpause the container before exec: %w", c.ID, errdefs.ErrConflict)
	}
	if !c.Running {
		return "", fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	keys, err := streams.ParseDetachKeys(cfg.DetachKeys)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	e := &execProc{id: stringid.New(), containerID: c.ID, cfg: cfg, detachKeys: keys, ended: make(chan struct{})}
	s.mu.Lock()
	s.execs[e.id] = e
	s.mu.Unlock()
	s.c.Event(c.ID, events.ActionExecCreate, map[string]string{"execID": e.id})
	return e.id, nil
}

// ExecInspect describes an exec.
func (s *Manager) ExecInspect(id string) (*container.ExecInspectResponse, error) {
	e, err := s.getExec(id)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	priv := e.cfg.Privileged
	return &container.ExecInspectResponse{
		ID: e.id, Running: e.running, ExitCode: e.exitCode, ContainerID: e.containerID, Pid: e.pid, DetachKeys: e.detachKeys,
		OpenStdin: e.cfg.AttachStdin, OpenStdout: e.cfg.AttachStdout, OpenStderr: e.cfg.AttachStderr,
		ProcessConfig: &container.ExecProcessConfig{Tty: e.cfg.Tty, Entrypoint: e.cfg.Cmd[0],
			Arguments: e.cfg.Cmd[1:], Privileged: &priv, User: e.cfg.User},
	}, nil
}

// ExecStart runs an exec. Detached, it returns once the process runs;
// otherwise it relays stdio between the process and in/out until the
// process ends, and then calls closeOut. On a terminal, the client's
// detach keys end the relay early and leave the process running (its
// output is read and dropped from then on), as docker does. A process
// that cannot start reports why on out and gets exit code 126 or 127, as
// in docker.
// rawOut says how the stream to out goes: raw (the start request's Tty)
// or framed as docker's multiplexed stream, whatever the exec's own
// terminal, as dockerd decides it (the Docker SDK creates with a
// terminal and starts without).
func (s *Manager) ExecStart(id string, detach, rawOut bool, in io.Reader, out io.Writer, closeOut func()) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return fmt.Errorf("Error: Exec command %s has already run: %w", id, errdefs.ErrConflict)
	}
	e.started = true
	e.mu.Unlock()
	c, err := s.c.Target(e.containerID)
	if err != nil {
		return err
	}
	if !c.Running {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	t := c.Task
	proc, err := Spec(t, c.Pid, e.cfg)
	if err != nil {
		return err
	}
	meta, _ := json.Marshal(e.cfg)
	stdin := !detach && in != nil && e.cfg.AttachStdin
	ctx := context.TODO()
	stream, err := t.Exec(ctx, e.id, proc, task.ExecOpts{Stdin: stdin, Meta: meta})
	if err != nil {
		code := StartFailureCode(err)
		e.mu.Lock()
		e.exitCode = &code
		e.mu.Unlock()
		close(e.ended)
		if !detach {
			streams.NewWriter(out, rawOut).Write(streams.Stderr, []byte("OCI runtime exec failed: "+err.Error()+"\n"))
			closeOut()
			return nil
		}
		return err
	}
	e.mu.Lock()
	e.running, e.pid = true, stream.Pid()
	e.mu.Unlock()
	s.c.Event(c.ID, events.ActionExecStart, map[string]string{"execID": e.id})
	go s.finishExec(c.ID, t, e)
	if detach {
		stream.Close() // the process goes on
		return nil
	}
	defer stream.Close()
	var detached chan struct{} // closed when the client types the detach keys
	if stdin {
		if e.cfg.Tty {
			detached = make(chan struct{})
			in = streams.NotifyDetach(streams.NewEscapeReader(in, e.detachKeys), detached)
		}
		go func() {
			io.Copy(stream, in)
			stream.CloseWrite()
		}()
	}
	// The stream comes framed from the supervisor (raw with a terminal).
	cw := streams.NewCutWriter(out)
	relayed := make(chan struct{})
	go func() {
		streams.Relay(cw, stream, e.cfg.Tty, rawOut)
		close(relayed)
	}()
	select {
	case <-relayed:
		// The client asks for the exit code once its stream ends.
		select {
		case <-e.ended:
		case <-time.After(5 * time.Second):
		}
	case <-detached: // nil, and never ready, without a terminal
		cw.Cut()
	case <-cw.Gone(): // the client hung up (the docker CLI detaches so)
	}
	closeOut()
	return nil
}

// finishExec records the end of exec e of task t of container id.
func (s *Manager) finishExec(id string, t task.Task, e *execProc) {
	st, err := t.ExecWait(context.TODO(), e.id)
	code := st.ExitCode
	if err != nil {
		code = 137 // gone with its container
	}
	e.mu.Lock()
	e.running, e.exitCode = false, &code
	e.mu.Unlock()
	close(e.ended)
	s.c.Event(id, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": fmt.Sprint(code)})
}

// Restore takes back the execs of container id, re-adopted at start-up
// with its task t.
func (s *Manager) Restore(id string, t task.Task) error {
	states, err := t.Execs(context.TODO())
	for _, st := range states {
		e := &execProc{id: st.ID, containerID: id, started: true, running: st.Running, pid: st.Pid, ended: make(chan struct{})}
		if json.Unmarshal(st.Meta, &e.cfg) != nil || len(e.cfg.Cmd) == 0 {
			continue // not one of ours
		}
		if st.Running {
			go s.finishExec(id, t, e)
		} else {
			code := st.ExitCode
			e.exitCode = &code
			close(e.ended)
		}
		s.mu.Lock()
		s.execs[e.id] = e
		s.mu.Unlock()
	}
	return err
}

// Forget drops the execs of container id (removed).
func (s *Manager) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for eid, e := range s.execs {
		if e.containerID == id {
			delete(s.execs, eid)
		}
	}
}

// Spec is the process of an exec in task t, whose init is pid: the
// container's process settings with the exec's command, environment,
// user and directory.
func Spec(t task.Task, pid int, cfg container.ExecCreateRequest) (*specs.Process, error) {
	ts, err := t.Spec(context.TODO())
	if err != nil {
		return nil, err
	}
	base := ts.Process
	p := *base
	p.Args = cfg.Cmd
	p.Terminal = cfg.Tty
	p.Env = spec.MergeEnv(base.Env, cfg.Env)
	p.ConsoleSize = nil
	if cfg.WorkingDir != "" {
		p.Cwd = cfg.WorkingDir
	}
	if cfg.User != "" {
		// Names are the container's, as its init sees its root.
		u, err := userdb.ResolveUser(fmt.Sprintf("/proc/%d/root", pid), cfg.User)
		if err != nil {
			return nil, err
		}
		p.User = u
	}
	if cfg.Privileged {
		all := caps.Bounding() // as a privileged container's
		p.Capabilities = &specs.LinuxCapabilities{Bounding: all, Effective: all, Permitted: all}
	}
	return &p, nil
}

// ExecResize sets the size of an exec's terminal.
func (s *Manager) ExecResize(id string, height, width uint16) error {
	e, err := s.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	running := e.running
	e.mu.Unlock()
	if !e.cfg.Tty || !running {
		return fmt.Errorf("exec %s has no terminal: %w", id, errdefs.ErrConflict)
	}
	c, err := s.c.Target(e.containerID)
	if err != nil {
		return err
	}
	if c.Task == nil {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	return c.Task.ExecResize(context.TODO(), id, height, width)
}

// StartFailureCode is the exit code docker records for a process that
// could not start: 126 (not executable), 127 (not found), else 128.
func StartFailureCode(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrPermission):
		return 126
	case errdefs.IsNotFound(err):
		return 127
	}
	return 128
}
