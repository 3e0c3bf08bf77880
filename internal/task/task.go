// Package task is the seam between the engine and what runs a container's
// processes: an isolation backend. The engine builds a container's OCI
// spec and its root file system's mounts; a Runtime turns them into a
// Task, one per run of the container, and the engine drives the Task
// through the container's life: start, signals, pause, exec, attach,
// wait for its end, delete.
//
// Terms. A task's *supervisor* is what holds the container's stdio and
// records its exit (for the process backend, internal/task/proc: a
// tent-monitor process per container, with the container's init below
// it). A task outlives the engine: a restarted engine gets it back with
// Runtime.Connect, and its exit is kept until read. A task's *root* is
// the container's root file system made from CreateOpts.Rootfs by the
// runtime, not by the engine (a VM backend makes a disk of it).
//
// Lifecycle: Create (the container's first process made, waiting) ->
// Start -> running (Kill, Pause/Resume, Exec, Attach, Resize, Pids,
// Update) -> ended (Wait returns) -> Delete. Optional abilities (such as
// checkpoint and restore) are separate interfaces, found by type
// assertion on a Task.
package task

import (
	"context"
	"io"
	"os"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/snapshot"
)

// A Runtime makes and finds tasks. The engine picks one per container
// (HostConfig.Runtime, among the daemon's configured runtimes).
type Runtime interface {
	// Create makes the task of container id: it mounts o.Rootfs as the
	// container's root, calls o.Prepare with that root to get the spec,
	// starts the supervisor and makes the container's first process,
	// which waits for Start. On error nothing of the task is left.
	Create(ctx context.Context, id string, o CreateOpts) (Task, error)
	// Connect returns the task of container id that an earlier engine
	// created at paths, running or ended (its exit is then kept).
	Connect(ctx context.Context, id string, paths Paths) (Task, error)
	// Cleanup removes whatever an interrupted task of id left at paths
	// (processes never started, state, mounts).
	Cleanup(ctx context.Context, id string, paths Paths) error
}

// Paths are where a task keeps its files, chosen by the engine: Dir lives
// while the host is up (sockets, state, the mounted root), ExitFile
// outlives a reboot (how the task ended), and so does Data.
type Paths struct {
	Dir      string
	ExitFile string
	// Data lives as long as the container, across reboots: what a task
	// keeps between runs (a VM's disk).
	Data string
}

// Mount is one mount of a root file system, in order (as snapshots give them).
type Mount = snapshot.Mount

// CreateOpts are what a task is made of.
type CreateOpts struct {
	Paths
	// Rootfs are the mounts that make up the container's root.
	Rootfs []Mount
	// Prepare builds the container's spec once its root is mounted at
	// root (a host path to read from: user names, content to copy into
	// volumes). The runtime sets the spec's root path itself.
	Prepare func(root string) (*specs.Spec, error)
	IO      IO
	Log     Log
	// Network: the engine wires networks into the namespace of the
	// task's Pid between Create and Start (a VM needs a NIC for them).
	Network bool
	// Wire, if set, wires them during Create instead, given the pid whose
	// namespace they go in, while the container's init sets up (and
	// before it applies the spec's sysctls, which then find the
	// interfaces, as with a runc prestart hook); its error fails the
	// create. A runtime that cannot leaves it uncalled, and the engine
	// wires after Create.
	Wire func(pid int) error
	// Restore: the task goes on from the checkpoint in this directory
	// (see Checkpointer) instead of starting the program afresh; a
	// runtime that cannot restore refuses it.
	Restore string
}

// IO is how the container's stdio is held by its supervisor.
type IO struct {
	Terminal  bool
	OpenStdin bool
	// StdinOnce closes stdin when the first attached writer finishes.
	StdinOnce bool
}

// Log is where the supervisor writes the container's output, in which
// format, and how it rotates it.
type Log = logfile.Options

// Exit is how a task ended.
type Exit struct {
	Code      int
	OOMKilled bool
	At        time.Time
}

// Status is where a task is in its life.
type Status string

// The statuses of a task (the OCI runtime's).
const (
	Created Status = "created"
	Running Status = "running"
	Paused  Status = "paused"
	Stopped Status = "stopped"
)

// State is a task's status, with its first process's host PID and the
// time it was created.
type State struct {
	Status  Status
	Pid     int
	Created time.Time
}

// AttachOpts choose the streams of an attachment. BeforeStart: the
// attachment is in place (and gets all output) when Attach returns.
type AttachOpts struct {
	Stdin, Stdout, Stderr bool
	BeforeStart           bool
}

// Stream is an attachment: the container's output (framed as in package
// streams unless it has a terminal) to read, its stdin to write;
// CloseWrite ends stdin.
type Stream interface {
	io.ReadWriteCloser
	CloseWrite() error
}

// ExecOpts are the settings of an exec.
type ExecOpts struct {
	// Stdin: what is written to the stream goes to the process.
	Stdin bool
	// Meta (JSON) is kept with the exec (the engine's own record of it) and
	// returned by Execs, for an engine that restarts.
	Meta []byte
	// Ephemeral: the task forgets the exec once ExecWait has answered
	// (a health probe, run every few seconds for the container's life).
	Ephemeral bool
}

// ExecStream is a running exec's stdio, as Stream is a container's; it
// ends when the process does. Closing it leaves the process running.
type ExecStream interface {
	Stream
	Pid() int
}

// ExecState is what a task keeps of an exec while the task exists.
type ExecState struct {
	ID       string
	Pid      int
	Running  bool
	ExitCode int
	Meta     []byte
}

// Checkpointer is a Task that can save its whole state (a VM's memory,
// vCPUs and devices) into a directory the engine made, and then end
// (exit) or run on. A Create with CreateOpts.Restore set to that
// directory goes on from there: the container's processes continue with
// their memory as it was.
type Checkpointer interface {
	Checkpoint(ctx context.Context, dir string, exit bool) error
}

// NetworkSyncer is a Task whose network the engine changes while it
// runs by more than wiring its namespace: the engine calls SyncNetwork
// once it has wired or unwired an endpoint there (a VM's guest has NICs
// of its own, which mirror the namespace's interfaces).
type NetworkSyncer interface {
	SyncNetwork(ctx context.Context) error
}

// RootOpener is a Task whose processes' root the engine can open, with
// every mount of theirs below it (docker cp; see internal/copier).
type RootOpener interface {
	OpenRoot(ctx context.Context) (*os.File, error)
}

// Task is one run of a container.
type Task interface {
	ID() string
	// Pid is the host PID of the task's first process (known at Create,
	// without asking the process's state).
	Pid() int
	// State reads the task's state now.
	State(ctx context.Context) (State, error)
	// Spec is the spec the task was created with.
	Spec(ctx context.Context) (*specs.Spec, error)
	// Start runs the container's program.
	Start(ctx context.Context) error
	// Wait blocks until the task ends and returns its exit; gone is
	// closed once its supervisor has finished too (its files may then be
	// removed). An error means the supervisor was lost: the task has
	// been ended.
	Wait(ctx context.Context) (exit Exit, gone <-chan struct{}, err error)
	// Kill signals the first process, or with all every process.
	Kill(ctx context.Context, sig syscall.Signal, all bool) error
	Pause(ctx context.Context) error
	Resume(ctx context.Context) error
	// Pids lists the host PIDs of the task's processes.
	Pids(ctx context.Context) ([]int, error)
	// Stats reads the task's resource counters (CPU, memory, pids, I/O).
	Stats(ctx context.Context) (*cgroups.Stats, error)
	// Update changes the resource limits of a running task.
	Update(ctx context.Context, r *specs.LinuxResources) error
	// Exec starts p (its ID is id) in the running container, as a
	// process of the task's supervisor: it outlives the engine.
	Exec(ctx context.Context, id string, p *specs.Process, o ExecOpts) (ExecStream, error)
	// ExecWait blocks until exec id ends and returns its state.
	ExecWait(ctx context.Context, id string) (ExecState, error)
	// ExecResize sets the size of exec id's terminal.
	ExecResize(ctx context.Context, id string, height, width uint16) error
	// Execs lists the task's execs, running and ended.
	Execs(ctx context.Context) ([]ExecState, error)
	// Attach connects to the container's stdio.
	Attach(ctx context.Context, o AttachOpts) (Stream, error)
	// Resize sets the size of the container's terminal.
	Resize(ctx context.Context, height, width uint16) error
	// Delete removes what is left of an ended task (its root's mounts
	// above all); it may be called more than once.
	Delete(ctx context.Context) error
}
