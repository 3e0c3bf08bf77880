// Package monitored is what the task backends whose tasks run under a
// tent-monitor (internal/monitor) share: the root's mount and the spec
// at Create, and a task's stdio, terminal and execs, asked of its
// monitor over its socket (both backends embed Client).
package monitored

import (
	"context"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
)

// PrepareRoot mounts o.Rootfs at root (made if missing) and builds the
// task's spec with o.Prepare; on an error nothing stays mounted.
func PrepareRoot(o task.CreateOpts, root string) (*specs.Spec, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, err
	}
	if err := snapshot.MountAll(o.Rootfs, root); err != nil {
		return nil, err
	}
	s, err := o.Prepare(root)
	if err != nil {
		snapshot.Unmount(root)
		return nil, err
	}
	return s, nil
}

// Client talks to the monitor of task ID in Dir.
type Client struct {
	ID  string
	Dir string
}

// Exec implements task.Task.
func (c Client) Exec(ctx context.Context, id string, p *specs.Process, o task.ExecOpts) (task.ExecStream, error) {
	conn, err := monitor.Exec(c.Dir, monitor.ExecRequest{ID: id, Process: p, Stdin: o.Stdin, Meta: o.Meta, Ephemeral: o.Ephemeral})
	if err != nil {
		if errors.Is(err, monitor.ErrGone) {
			return nil, fmt.Errorf("task %s has ended: %w", c.ID, errdefs.ErrConflict)
		}
		return nil, err
	}
	return conn, nil
}

// ExecWait implements task.Task.
func (c Client) ExecWait(ctx context.Context, id string) (task.ExecState, error) {
	rec, err := monitor.ExecWait(c.Dir, id)
	return execState(rec), err
}

// ExecResize implements task.Task.
func (c Client) ExecResize(ctx context.Context, id string, height, width uint16) error {
	return monitor.ExecResize(c.Dir, id, height, width)
}

// Execs implements task.Task.
func (c Client) Execs(ctx context.Context) ([]task.ExecState, error) {
	recs, err := monitor.Execs(c.Dir)
	out := make([]task.ExecState, len(recs))
	for i, r := range recs {
		out[i] = execState(r)
	}
	return out, err
}

func execState(r monitor.ExecRecord) task.ExecState {
	return task.ExecState{ID: r.ID, Pid: r.Pid, Running: r.Running, ExitCode: r.ExitCode, Meta: r.Meta}
}

// Attach implements task.Task.
func (c Client) Attach(ctx context.Context, o task.AttachOpts) (task.Stream, error) {
	mo := monitor.AttachOpts{Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}
	attach := monitor.Attach
	if o.BeforeStart {
		attach = monitor.AttachBeforeStart
	}
	conn, err := attach(c.Dir, mo)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// Resize implements task.Task.
func (c Client) Resize(ctx context.Context, height, width uint16) error {
	return monitor.Resize(c.Dir, height, width)
}
