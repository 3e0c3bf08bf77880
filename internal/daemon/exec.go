package daemon

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/execs"
	"github.com/tent-project/tent/internal/ps"
)

// execTargets answers internal/execs about the daemon's containers.
type execTargets struct{ d *Daemon }

func (x execTargets) Target(ref string) (execs.Target, error) {
	c, err := x.d.ctrs.Get(ref)
	if err != nil {
		return execs.Target{}, err
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	return execs.Target{ID: c.ID, Running: c.Running(), Paused: c.State.Status == container.StatePaused, Task: c.Task, Pid: c.State.Pid}, nil
}

func (x execTargets) Event(id string, action events.Action, attrs map[string]string) {
	if c, err := x.d.ctrs.Get(id); err == nil {
		x.d.containerEvent(c, action, attrs)
	}
}

// Top lists the container's processes as `ps` (with psArgs, default -ef)
// shows them, as GET /containers/{id}/top.
func (d *Daemon) Top(ref, psArgs string) (*container.TopResponse, error) {
	t, err := execTargets{d}.Target(ref)
	if err != nil {
		return nil, err
	}
	if !t.Running {
		return nil, fmt.Errorf("container %s is not running: %w", t.ID, errdefs.ErrConflict)
	}
	pids, err := t.Task.Pids(context.TODO())
	if err != nil {
		return nil, err
	}
	return ps.Top(pids, psArgs)
}
