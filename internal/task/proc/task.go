package proc

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/monitored"
	"golang.org/x/sys/unix"
)

// Task is a container under its monitor.
type Task struct {
	monitored.Client // stdio, terminal and execs, through the monitor
	r                *Runtime
	id               string
	paths            task.Paths
	c                *runtime.Container // nil: its state is gone (the task has ended)
	pid              int

	mu     sync.Mutex
	waiter *monitor.Waiter // registered at Start, before the program runs
	gone   <-chan struct{} // once waited for

	// waitMu makes one Wait wait; the others get its result.
	waitMu sync.Mutex
	waited bool
	exit   task.Exit
	err    error
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
	// Registered before the start, so that the end of a program that
	// exits at once cannot be missed.
	t.mu.Lock()
	t.waiter = monitor.NewWaiter(t.paths.Dir, t.paths.ExitFile)
	t.mu.Unlock()
	if err := c.Start(); err != nil {
		return err
	}
	go t.r.refillSpare()
	return nil
}

func (t *Task) Wait(ctx context.Context) (task.Exit, <-chan struct{}, error) {
	t.waitMu.Lock()
	defer t.waitMu.Unlock()
	t.mu.Lock()
	gone, w := t.gone, t.waiter
	t.mu.Unlock()
	if t.waited {
		return t.exit, gone, t.err
	}
	if w == nil {
		w = monitor.NewWaiter(t.paths.Dir, t.paths.ExitFile)
	}
	e, gone, err := w.Wait()
	if err != nil {
		// The monitor died without a word: nothing supervises the
		// container any more, so it ends.
		if c, lerr := t.r.rt.Load(t.id); lerr == nil {
			c.Delete(true)
		}
		e = monitor.Exit{Code: 255, At: time.Now().UTC()}
	}
	t.waited, t.exit, t.err = true, task.Exit{Code: e.Code, OOMKilled: e.OOMKilled, At: e.At}, err
	t.mu.Lock()
	t.gone = gone
	t.mu.Unlock()
	return t.exit, gone, t.err
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

// OpenRoot implements task.RootOpener: the init's root, checked to be
// the task's own (a pid reused after the init died would be another's).
func (t *Task) OpenRoot(ctx context.Context) (*os.File, error) {
	root, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", t.pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("task %s has ended: %w", t.id, errdefs.ErrConflict)
	}
	var got, want unix.Stat_t
	if unix.Fstat(int(root.Fd()), &got) != nil || unix.Stat(rootOf(t.paths), &want) != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		root.Close()
		return nil, fmt.Errorf("task %s has ended: %w", t.id, errdefs.ErrConflict)
	}
	return root, nil
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
	root := rootOf(t.paths)
	if snapshot.Unmount(root) == nil {
		return nil
	}
	// Busy: processes outside the init's PID namespace (--pid host) live
	// until the monitor's clean-up kills them.
	t.mu.Lock()
	gone := t.gone
	t.mu.Unlock()
	if gone != nil {
		<-gone
	}
	return snapshot.Unmount(root)
}
