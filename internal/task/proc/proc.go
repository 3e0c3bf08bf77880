// Package proc is the process backend of package task: each task is a
// container run by tent's own OCI runtime (internal/runtime) under a
// tent-monitor process (internal/monitor) that holds its stdio, writes
// its log and records its exit, so that containers outlive the engine.
// The monitor, the container's init and its exec helpers all start from
// one sealed in-memory copy of the monitor binary; a spare monitor, with
// an init already started in new namespaces, waits for the next task
// (docs/engine.md says what each saves).
package proc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/monitored"
)

// Runtime is the process backend.
type Runtime struct {
	rt  *runtime.Runtime
	bin *os.File // the sealed monitor binary
	exe string
	log *slog.Logger
	// cgroupParent is where containers' cgroups go unless they say: the
	// spare's init waits in a cgroup there (runtime.Prestarted.JoinCgroup).
	cgroupParent string

	mu     sync.Mutex
	spare  *monitor.Spare
	closed bool
}

// New makes the backend: monitors run from exe (sealed into memory now,
// so that replacing the file, an upgrade, does not touch running
// containers), the runtime's state goes under stateDir; containers'
// cgroups go under cgroupParent unless their specs say otherwise.
func New(exe, stateDir, cgroupParent string, log *slog.Logger) (*Runtime, error) {
	bin, err := runtime.SealBinary(exe)
	if err != nil {
		return nil, fmt.Errorf("seal %s: %w", exe, err)
	}
	rt, err := runtime.New(stateDir, runtime.WithBinary(bin))
	if err != nil {
		bin.Close()
		return nil, err
	}
	r := &Runtime{rt: rt, bin: bin, exe: fmt.Sprintf("/proc/self/fd/%d", bin.Fd()), log: log, cgroupParent: cgroupParent}
	runtime.RemoveSpareCgroups(cgroupParent) // of spares that ended with their daemon
	go r.refillSpare()
	return r, nil
}

// MonitorExe is the path of the sealed monitor binary (for as long as
// the backend is open), which other backends' monitors may run from.
func (r *Runtime) MonitorExe() string { return r.exe }

// Close ends the spare monitor. Tasks keep running.
func (r *Runtime) Close() error {
	r.mu.Lock()
	r.closed = true
	if r.spare != nil {
		r.spare.Close()
		r.spare = nil
	}
	r.mu.Unlock()
	runtime.RemoveSpareCgroups(r.cgroupParent) // of spares that were killed
	return r.bin.Close()
}

func rootOf(p task.Paths) string { return filepath.Join(p.Dir, "rootfs") }

// Create implements task.Runtime.
func (r *Runtime) Create(ctx context.Context, id string, o task.CreateOpts) (_ task.Task, err error) {
	if o.Restore != "" {
		return nil, fmt.Errorf("restoring a process container needs CRIU, which tent does not drive yet (a VM container, --isolation vm, can be): %w", errdefs.ErrNotImplemented)
	}
	root := rootOf(o.Paths)
	r.Cleanup(ctx, id, o.Paths) // what a crash left
	_, err = monitored.PrepareBundle(o, root)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			snapshot.Unmount(root)
		}
	}()
	var wireErr error // the engine's own, not the monitor's relay of it
	var wire func(pid int) error
	if o.Wire != nil {
		wire = func(pid int) error { wireErr = o.Wire(pid); return wireErr }
	}
	pid, reap, err := r.spawnMonitor(o.Dir, monitor.Config{
		ID: id, RuntimeRoot: r.rt.Root(), Bundle: o.Dir, Log: o.Log, ExitFile: o.ExitFile,
		Tty: o.IO.Terminal, OpenStdin: o.IO.OpenStdin, StdinOnce: o.IO.StdinOnce,
	}, wire)
	if err != nil {
		if wireErr != nil {
			return nil, wireErr
		}
		return nil, fmt.Errorf("failed to create task for container: %w", err)
	}
	go reap()
	t := &Task{Client: monitored.Client{ID: id, Dir: o.Dir}, Ending: monitored.Ending{Paths: o.Paths}, r: r, id: id, pid: pid}
	if t.c, err = r.rt.Load(id); err != nil {
		// Created, but its state cannot be read: end it.
		syscall.Kill(pid, syscall.SIGKILL)
		_, gone, _ := t.Wait(ctx)
		<-gone
		return nil, err
	}
	return t, nil
}

// Connect implements task.Runtime.
func (r *Runtime) Connect(ctx context.Context, id string, paths task.Paths) (task.Task, error) {
	t := &Task{Client: monitored.Client{ID: id, Dir: paths.Dir}, Ending: monitored.Ending{Paths: paths}, r: r, id: id}
	if t.c, _ = r.rt.Load(id); t.c != nil { // none: the task has ended and its monitor cleaned up
		t.pid = t.c.State().Pid
	}
	return t, nil
}

// Cleanup implements task.Runtime.
func (r *Runtime) Cleanup(ctx context.Context, id string, paths task.Paths) error {
	if c, err := r.rt.Load(id); err == nil {
		c.Delete(true)
	}
	return snapshot.Unmount(rootOf(paths))
}

// spawnMonitor starts the monitor of a task: the spare one when there is
// one (its Go start-up, and its init's, already done), else a new one.
func (r *Runtime) spawnMonitor(dir string, cfg monitor.Config, network func(pid int) error) (pid int, reap func(), err error) {
	r.mu.Lock()
	s := r.spare
	r.spare = nil
	r.mu.Unlock()
	if s != nil {
		pid, reap, err = s.Use(dir, cfg, network)
		if !errors.Is(err, monitor.ErrSpareGone) {
			return pid, reap, err
		}
		r.log.Warn("spare monitor gone; starting one", "err", err)
		runtime.RemoveSpareCgroups(r.cgroupParent)
	}
	return monitor.Spawn(r.exe, dir, cfg, network)
}

// refillSpare starts a spare monitor if there is none.
func (r *Runtime) refillSpare() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.spare != nil || r.closed {
		return
	}
	s, err := monitor.StartSpare(r.exe, r.cgroupParent)
	if err != nil {
		r.log.Warn("start a spare monitor", "err", err)
		return
	}
	r.spare = s
}
