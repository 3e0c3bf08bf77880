package proc

import (
	"context"
	"fmt"
	"os"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/monitored"
)

// Task is a container under its monitor.
type Task struct {
	monitored.Client // stdio, terminal and execs, through the monitor
	monitored.Ending
	r   *Runtime
	id  string
	c   *runtime.Container // nil: its state is gone (the task has ended)
	pid int
}

func (t *Task) ID() string { return t.id }

func (t *Task) Pid() int { return t.pid }

// container is the runtime's view of the task, or an error saying it has
// none any more.
func (t *Task) container() (*runtime.Container, error) {
	if t.c == nil {
		return nil, fmt.Errorf("task %s has ended: %w", t.id, errdefs.ErrConflict)
	}
	return t.c, nil
}

func (t *Task) State(ctx context.Context) (task.State, error) {
	if t.c == nil {
		return task.State{Status: task.Stopped}, nil
	}
	st := t.c.State()
	return task.State{Status: task.Status(st.Status), Pid: st.Pid, Created: st.Created}, nil
}

func (t *Task) Spec(ctx context.Context) (*specs.Spec, error) {
	c, err := t.container()
	if err != nil {
		return nil, err
	}
	return c.Spec(), nil
}

func (t *Task) Start(ctx context.Context) error {
	c, err := t.container()
	if err != nil {
		return err
	}
	t.Arm()
	if err := c.Start(); err != nil {
		return err
	}
	go t.r.refillSpare()
	return nil
}

func (t *Task) Wait(ctx context.Context) (task.Exit, <-chan struct{}, error) {
	return t.Ending.Wait(func() {
		if c, err := t.r.rt.Load(t.id); err == nil {
			c.Delete(true)
		}
	})
}

func (t *Task) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	c, err := t.container()
	if err != nil {
		return err
	}
	return c.Signal(sig, all)
}

func (t *Task) Pause(ctx context.Context) error {
	c, err := t.container()
	if err != nil {
		return err
	}
	return c.Pause()
}

func (t *Task) Resume(ctx context.Context) error {
	c, err := t.container()
	if err != nil {
		return err
	}
	return c.Resume()
}

func (t *Task) Pids(ctx context.Context) ([]int, error) {
	c, err := t.container()
	if err != nil {
		return nil, err
	}
	return c.Pids()
}

// OpenRoot implements task.RootOpener.
func (t *Task) OpenRoot(ctx context.Context) (*os.File, error) {
	return monitored.OpenRoot(t.id, t.pid, rootOf(t.Paths))
}

func (t *Task) Stats(ctx context.Context) (*cgroups.Stats, error) {
	c, err := t.container()
	if err != nil {
		return nil, err
	}
	return c.Stats()
}

func (t *Task) Update(ctx context.Context, r *specs.LinuxResources) error {
	c, err := t.container()
	if err != nil {
		return err
	}
	return c.Update(r)
}

func (t *Task) Delete(ctx context.Context) error {
	return t.UnmountRoot(rootOf(t.Paths))
}
