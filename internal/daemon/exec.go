package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/task"
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

func (d *Daemon) getExec(id string) (*execProc, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	e, ok := d.execs[id]
	if !ok {
		return nil, fmt.Errorf("No such exec instance: %s: %w", id, errdefs.ErrNotFound)
	}
	return e, nil
}

// ExecCreate registers a command to run in a running container.
func (d *Daemon) ExecCreate(ref string, cfg container.ExecCreateRequest) (string, error) {
	c, err := d.get(ref)
	if err != nil {
		return "", err
	}
	if len(cfg.Cmd) == 0 {
		return "", fmt.Errorf("No exec command specified: %w", errdefs.ErrInvalidArgument)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.State.Status == container.StatePaused {
		return "", fmt.Errorf("Container %s is paused, unpause the container before exec: %w", c.ID, errdefs.ErrConflict)
	}
	if !c.running() {
		return "", fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	keys, err := streams.ParseDetachKeys(cfg.DetachKeys)
	if err != nil {
		return "", fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
	}
	e := &execProc{id: newID(), containerID: c.ID, cfg: cfg, detachKeys: keys, ended: make(chan struct{})}
	d.mu.Lock()
	d.execs[e.id] = e
	d.mu.Unlock()
	d.containerEvent(c, events.ActionExecCreate, map[string]string{"execID": e.id})
	return e.id, nil
}

// ExecInspect describes an exec.
func (d *Daemon) ExecInspect(id string) (*container.ExecInspectResponse, error) {
	e, err := d.getExec(id)
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
func (d *Daemon) ExecStart(id string, detach, rawOut bool, in io.Reader, out io.Writer, closeOut func()) error {
	e, err := d.getExec(id)
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
	c, err := d.get(e.containerID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	running := c.running()
	c.mu.Unlock()
	if !running {
		return fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	c.mu.Lock()
	t, pid := c.task, c.State.Pid
	c.mu.Unlock()
	proc, err := d.execSpec(t, pid, e.cfg)
	if err != nil {
		return err
	}
	meta, _ := json.Marshal(e.cfg)
	stdin := !detach && in != nil && e.cfg.AttachStdin
	ctx := context.TODO()
	stream, err := t.Exec(ctx, e.id, proc, task.ExecOpts{Stdin: stdin, Meta: meta})
	if err != nil {
		code := startFailureCode(err)
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
	d.containerEvent(c, events.ActionExecStart, map[string]string{"execID": e.id})
	go d.finishExec(c, t, e)
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

// finishExec records the end of exec e of task t.
func (d *Daemon) finishExec(c *ctr, t task.Task, e *execProc) {
	st, err := t.ExecWait(context.TODO(), e.id)
	code := st.ExitCode
	if err != nil {
		code = 137 // gone with its container
	}
	e.mu.Lock()
	e.running, e.exitCode = false, &code
	e.mu.Unlock()
	close(e.ended)
	d.containerEvent(c, events.ActionExecDie, map[string]string{"execID": e.id, "exitCode": fmt.Sprint(code)})
}

// restoreExecs takes back the execs of a container re-adopted at start-up.
func (d *Daemon) restoreExecs(c *ctr, t task.Task) {
	states, err := t.Execs(context.TODO())
	if err != nil {
		d.log.Warn("execs of a re-adopted container", "container", c.ID, "err", err)
	}
	for _, st := range states {
		e := &execProc{id: st.ID, containerID: c.ID, started: true, running: st.Running, pid: st.Pid, ended: make(chan struct{})}
		if json.Unmarshal(st.Meta, &e.cfg) != nil || len(e.cfg.Cmd) == 0 {
			continue // not one of ours
		}
		if st.Running {
			go d.finishExec(c, t, e)
		} else {
			code := st.ExitCode
			e.exitCode = &code
			close(e.ended)
		}
		d.mu.Lock()
		d.execs[e.id] = e
		d.mu.Unlock()
	}
}

// execSpec is the process of an exec: the container's process settings
// with the exec's command, environment, user and directory.
func (d *Daemon) execSpec(t task.Task, pid int, cfg container.ExecCreateRequest) (*specs.Process, error) {
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
		u, err := spec.ResolveUser(fmt.Sprintf("/proc/%d/root", pid), cfg.User)
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
func (d *Daemon) ExecResize(id string, height, width uint16) error {
	e, err := d.getExec(id)
	if err != nil {
		return err
	}
	e.mu.Lock()
	running := e.running
	e.mu.Unlock()
	if !e.cfg.Tty || !running {
		return fmt.Errorf("exec %s has no terminal: %w", id, errdefs.ErrConflict)
	}
	c, err := d.get(e.containerID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	t := c.task
	c.mu.Unlock()
	return t.ExecResize(context.TODO(), id, height, width)
}

// Top lists the container's processes as `ps` (with psArgs, default -ef)
// shows them, as GET /containers/{id}/top.
func (d *Daemon) Top(ref, psArgs string) (*container.TopResponse, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	running := c.running()
	c.mu.Unlock()
	if !running {
		return nil, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	c.mu.Lock()
	t := c.task
	c.mu.Unlock()
	pids, err := t.Pids(context.TODO())
	if err != nil {
		return nil, err
	}
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.Command("ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return nil, fmt.Errorf("ps %s: %v: %w", psArgs, err, errdefs.ErrInvalidArgument)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return nil, fmt.Errorf("ps %s: no PID column: %w", psArgs, errdefs.ErrInvalidArgument)
	}
	top := &container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < len(titles) {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		// The last column (the command) may contain spaces.
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		top.Processes = append(top.Processes, row)
	}
	return top, nil
}
