// Package monitored is what the task backends whose tasks run under a
// tent-monitor (internal/monitor) share: the root's mount and the spec
// at Create, and a task's stdio, terminal and execs, asked of its
// monitor over its socket (both backends embed Client).
package monitored

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
	"golang.org/x/sys/unix"
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

// PrepareBundle makes the OCI bundle of a task in o.Dir: its root's
// mounts at root and the spec (with that root) as config.json; the exit
// file of an earlier run goes. On an error nothing stays mounted.
func PrepareBundle(o task.CreateOpts, root string) (*specs.Spec, error) {
	spec, err := PrepareRoot(o, root)
	if err != nil {
		return nil, err
	}
	if spec.Root == nil {
		spec.Root = &specs.Root{}
	}
	spec.Root.Path = root
	b, err := json.Marshal(spec)
	if err == nil {
		err = os.WriteFile(filepath.Join(o.Dir, "config.json"), b, 0o600)
	}
	if err != nil {
		snapshot.Unmount(root)
		return nil, err
	}
	os.Remove(o.ExitFile)
	return spec, nil
}

// BundleSpec is the spec PrepareBundle wrote in dir, or nil.
func BundleSpec(dir string) *specs.Spec {
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		return nil
	}
	var s specs.Spec
	if json.Unmarshal(b, &s) != nil {
		return nil
	}
	return &s
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

// Ending is how a monitored task's end is waited for: once, its result
// kept for every later Wait.
type Ending struct {
	Paths task.Paths

	mu     sync.Mutex
	waiter *monitor.Waiter // registered at Start, before the program runs
	gone   <-chan struct{} // once waited for

	// waitMu makes one Wait wait; the others get its result.
	waitMu sync.Mutex
	waited bool
	exit   task.Exit
	err    error
}

// Arm registers for the end before the start, so that the end of a
// program that exits at once cannot be missed.
func (e *Ending) Arm() {
	e.mu.Lock()
	e.waiter = monitor.NewWaiter(e.Paths.Dir, e.Paths.ExitFile)
	e.mu.Unlock()
}

// Wait implements task.Task's Wait. lost ends the container when its
// monitor died without a word (nothing supervises it any more).
func (e *Ending) Wait(lost func()) (task.Exit, <-chan struct{}, error) {
	e.waitMu.Lock()
	defer e.waitMu.Unlock()
	e.mu.Lock()
	gone, w := e.gone, e.waiter
	e.mu.Unlock()
	if e.waited {
		return e.exit, gone, e.err
	}
	if w == nil {
		w = monitor.NewWaiter(e.Paths.Dir, e.Paths.ExitFile)
	}
	x, gone, err := w.Wait()
	if err != nil {
		lost()
		x = monitor.Exit{Code: 255, At: time.Now().UTC()}
	}
	e.waited, e.exit, e.err = true, task.Exit{Code: x.Code, OOMKilled: x.OOMKilled, At: x.At}, err
	e.mu.Lock()
	e.gone = gone
	e.mu.Unlock()
	return e.exit, gone, e.err
}

// UnmountRoot unmounts a task's root (Delete). Busy, it waits for the
// monitor, if waited for, to finish first: processes outside the init's
// PID namespace (--pid host) live until its clean-up kills them.
func (e *Ending) UnmountRoot(root string) error {
	if snapshot.Unmount(root) == nil {
		return nil
	}
	e.mu.Lock()
	gone := e.gone
	e.mu.Unlock()
	if gone != nil {
		<-gone
	}
	return snapshot.Unmount(root)
}

// OpenRoot is task.RootOpener's OpenRoot for a task whose first process
// is pid and whose root is mounted at root: the process's root, checked
// to be that one (a pid reused after the task ended would be another's).
func OpenRoot(id string, pid int, root string) (*os.File, error) {
	f, err := os.OpenFile(fmt.Sprintf("/proc/%d/root", pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("task %s has ended: %w", id, errdefs.ErrConflict)
	}
	var got, want unix.Stat_t
	if unix.Fstat(int(f.Fd()), &got) != nil || unix.Stat(root, &want) != nil || got.Dev != want.Dev || got.Ino != want.Ino {
		f.Close()
		return nil, fmt.Errorf("task %s has ended: %w", id, errdefs.ErrConflict)
	}
	return f, nil
}
