// Package ocibin is the task backend for OCI runtime binaries with runc's
// command line (runc, crun, runsc...): the runtimes a daemon is given
// with --add-runtime or daemon.json's "runtimes", as dockerd's. The
// binary makes each container under a tent-monitor (internal/monitor),
// which holds its stdio, writes its log, reaps its init and execs and
// records their ends, as for tent's own runtime (internal/task/proc), so
// that these containers outlive the engine too. Start, signals, pauses,
// updates, state and processes are the binary's commands, run by the
// engine; stats are read from the container's cgroup.
package ocibin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/monitored"
)

// Binary is an OCI runtime binary as a daemon is configured with it.
type Binary struct {
	Path string
	// Args are given before every command (the binary's global options,
	// dockerd's runtimeArgs).
	Args []string
}

// Runtime is the backend of one binary.
type Runtime struct {
	oci *monitor.OCIRuntime
	exe string // the monitor binary
}

// New makes the backend of b: its state goes under stateDir (the
// binary's --root), its tasks' monitors run from monitorExe.
func New(b Binary, stateDir, monitorExe string) (*Runtime, error) {
	path := b.Path
	if !filepath.IsAbs(path) {
		return nil, fmt.Errorf("runtime path %q: an absolute path is needed: %w", path, errdefs.ErrInvalidArgument)
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	return &Runtime{oci: &monitor.OCIRuntime{Path: path, Args: b.Args, Root: stateDir}, exe: monitorExe}, nil
}

func rootOf(p task.Paths) string { return filepath.Join(p.Dir, "rootfs") }

// Create implements task.Runtime.
func (r *Runtime) Create(ctx context.Context, id string, o task.CreateOpts) (_ task.Task, err error) {
	if o.Restore != "" {
		return nil, fmt.Errorf("restoring a container of runtime %s is not supported: %w", filepath.Base(r.oci.Path), errdefs.ErrNotImplemented)
	}
	if _, err := os.Stat(r.oci.Path); err != nil {
		return nil, fmt.Errorf("runtime binary: %w: %w", err, errdefs.ErrUnavailable)
	}
	root := rootOf(o.Paths)
	r.Cleanup(ctx, id, o.Paths) // what a crash left
	spec, err := monitored.PrepareBundle(o, root)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			snapshot.Unmount(root)
		}
	}()
	pid, reap, err := monitor.Spawn(r.exe, o.Dir, monitor.Config{
		ID: id, Bundle: o.Dir, Log: o.Log, ExitFile: o.ExitFile,
		Tty: o.IO.Terminal, OpenStdin: o.IO.OpenStdin, StdinOnce: o.IO.StdinOnce, OCI: r.oci,
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to create task for container: %w", err)
	}
	go reap()
	return &Task{Client: monitored.Client{ID: id, Dir: o.Dir}, Ending: monitored.Ending{Paths: o.Paths}, r: r, id: id, pid: pid, spec: spec}, nil
}

// Connect implements task.Runtime.
func (r *Runtime) Connect(ctx context.Context, id string, paths task.Paths) (task.Task, error) {
	t := &Task{Client: monitored.Client{ID: id, Dir: paths.Dir}, Ending: monitored.Ending{Paths: paths}, r: r, id: id}
	if st, err := t.State(ctx); err == nil {
		t.pid = st.Pid
	}
	t.spec = monitored.BundleSpec(paths.Dir)
	return t, nil
}

// Cleanup implements task.Runtime.
func (r *Runtime) Cleanup(ctx context.Context, id string, paths task.Paths) error {
	r.oci.Run(nil, "delete", "--force", id) // none there: nothing to do
	return snapshot.Unmount(rootOf(paths))
}

// Task is a container of the binary under its monitor.
type Task struct {
	monitored.Client // stdio, terminal and execs, through the monitor
	monitored.Ending
	r    *Runtime
	id   string
	pid  int
	spec *specs.Spec
}

func (t *Task) ID() string { return t.id }

func (t *Task) Pid() int { return t.pid }

// ociState is what the binary's state command says (the OCI state).
type ociState struct {
	Status  string    `json:"status"`
	Pid     int       `json:"pid"`
	Created time.Time `json:"created"`
}

// State implements task.Task: the binary's state, stopped when the
// binary no longer knows the container.
func (t *Task) State(ctx context.Context) (task.State, error) {
	out, err := t.r.oci.Run(nil, "state", t.id)
	if err != nil {
		return task.State{Status: task.Stopped}, nil
	}
	var st ociState
	if err := json.Unmarshal(out, &st); err != nil {
		return task.State{}, fmt.Errorf("%s state: %w", filepath.Base(t.r.oci.Path), err)
	}
	return task.State{Status: task.Status(st.Status), Pid: st.Pid, Created: st.Created}, nil
}

func (t *Task) Spec(ctx context.Context) (*specs.Spec, error) {
	if t.spec == nil {
		return nil, fmt.Errorf("task %s has no spec: %w", t.id, errdefs.ErrNotFound)
	}
	return t.spec, nil
}

// running fails with a conflict unless the task is in one of want.
func (t *Task) running(ctx context.Context, want ...task.Status) error {
	st, err := t.State(ctx)
	if err != nil {
		return err
	}
	for _, w := range want {
		if st.Status == w {
			return nil
		}
	}
	return fmt.Errorf("container %s is %s: %w", t.id, st.Status, errdefs.ErrConflict)
}

func (t *Task) Start(ctx context.Context) error {
	if err := t.running(ctx, task.Created); err != nil {
		return err
	}
	t.Arm()
	_, err := t.r.oci.Run(nil, "start", t.id)
	if err != nil && startedAnyway(err) {
		return nil
	}
	return err
}

// startedAnyway tells a start that released the container from one that
// failed: runc start removes its exec fifo after the container's init
// has read it and gone on to exec the program. A program that ends at
// once, on a loaded machine, is reaped and its state deleted by the
// monitor (runc delete) before that removal, which then fails with
// ENOENT although the container ran (TestEngineAddRuntime, `run --rm`).
func startedAnyway(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "remove ") && strings.Contains(msg, "exec.fifo: no such file or directory")
}

func (t *Task) Wait(ctx context.Context) (task.Exit, <-chan struct{}, error) {
	return t.Ending.Wait(func() { t.r.oci.Run(nil, "delete", "--force", t.id) })
}

func (t *Task) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	if err := t.running(ctx, task.Created, task.Running, task.Paused); err != nil {
		return err
	}
	args := []string{"kill"}
	if all {
		args = append(args, "--all")
	}
	_, err := t.r.oci.Run(nil, append(args, t.id, strconv.Itoa(int(sig)))...)
	return err
}

func (t *Task) Pause(ctx context.Context) error {
	if err := t.running(ctx, task.Running); err != nil {
		return err
	}
	_, err := t.r.oci.Run(nil, "pause", t.id)
	return err
}

func (t *Task) Resume(ctx context.Context) error {
	if err := t.running(ctx, task.Paused); err != nil {
		return err
	}
	_, err := t.r.oci.Run(nil, "resume", t.id)
	return err
}

func (t *Task) Pids(ctx context.Context) ([]int, error) {
	out, err := t.r.oci.Run(nil, "ps", "--format", "json", t.id)
	if err != nil {
		return nil, err
	}
	var pids []int
	if err := json.Unmarshal(out, &pids); err != nil {
		return nil, fmt.Errorf("%s ps: %w", filepath.Base(t.r.oci.Path), err)
	}
	return pids, nil
}

// cgroup is the container's cgroup, where the spec put it.
func (t *Task) cgroup() (cgroups.Manager, error) {
	if t.spec == nil || t.spec.Linux == nil {
		return nil, fmt.Errorf("task %s: no cgroup known: %w", t.id, errdefs.ErrNotFound)
	}
	p, err := cgroups.ConvertPath(t.spec.Linux.CgroupsPath, t.id, false)
	if err != nil {
		return nil, err
	}
	return cgroups.New(p)
}

func (t *Task) Stats(ctx context.Context) (*cgroups.Stats, error) {
	if err := t.running(ctx, task.Running, task.Paused); err != nil {
		return nil, err
	}
	cg, err := t.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

func (t *Task) Update(ctx context.Context, r *specs.LinuxResources) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	_, err = t.r.oci.Run(b, "update", "--resources", "-", t.id)
	return err
}

// OpenRoot implements task.RootOpener.
func (t *Task) OpenRoot(ctx context.Context) (*os.File, error) {
	return monitored.OpenRoot(t.id, t.pid, rootOf(t.Paths))
}

func (t *Task) Delete(ctx context.Context) error {
	return t.UnmountRoot(rootOf(t.Paths))
}
