// Package containers holds the engine's containers: each one's record
// (what metadata.db keeps of it), its state, what lives of it in memory
// while the daemon runs (its task, the clients waiting on it), and the
// Store that finds containers by ID, name or ID prefix, names them and
// writes their records. The daemon drives the lifecycle; this package
// knows no runtime, image or network.
package containers

import (
	"context"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/ps"
	"github.com/tent-project/tent/internal/task"
)

// Record is a container as stored in metadata.db.
type Record struct {
	ID           string                `json:"id"`
	Name         string                `json:"name"` // without the leading "/"
	Created      time.Time             `json:"created"`
	Image        string                `json:"image"` // the image ID
	Config       *container.Config     `json:"config"`
	HostConfig   *container.HostConfig `json:"hostConfig"`
	Path         string                `json:"path"`
	Args         []string              `json:"args"`
	State        State                 `json:"state"`
	RestartCount int                   `json:"restartCount,omitempty"`
	// ManuallyStopped is set while stop or kill ends the container on
	// purpose, and kept until its next start: a restart policy leaves such
	// a container stopped (but "always" starts it with the daemon, as
	// docker's does).
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// MountPoints are its binds and volumes, decided at create.
	MountPoints []mounts.Point `json:"mountPoints,omitempty"`
	// Networks are the networks it is on, by name, with what it asked of
	// each.
	Networks map[string]*netapi.EndpointSettings `json:"networks,omitempty"`
}

// State is where a container is in its lifecycle.
type State struct {
	Status    container.ContainerState `json:"status"`
	Pid       int                      `json:"pid,omitempty"`
	ExitCode  int                      `json:"exitCode"`
	Error     string                   `json:"error,omitempty"`
	OOMKilled bool                     `json:"oomKilled,omitempty"`
	// Health is the health check's state, for a container with one.
	Health     *container.Health `json:"health,omitempty"`
	StartedAt  time.Time         `json:"startedAt"`
	FinishedAt time.Time         `json:"finishedAt"`
}

// PS is what ps shows of the state.
func (s State) PS() ps.State {
	return ps.State{Status: s.Status, ExitCode: s.ExitCode, Health: s.Health, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt}
}

// Container is a container in memory. Mu serializes its lifecycle
// operations and guards every field.
type Container struct {
	Mu sync.Mutex
	Record
	// Exited is closed when the current (or next) run ends, then
	// replaced (EndRun).
	Exited chan struct{}
	// Removed is closed when the container is removed.
	Removed chan struct{}
	// MonitorGone is closed once the last run's monitor has finished
	// (monitor.Waiter): a new run, or the removal of the container's
	// directories, waits for it.
	MonitorGone <-chan struct{}
	// Task is the current (or last) run, nil before the first one.
	Task task.Task
	// pending are attachments that wait for the container to start.
	pending []*pendingAttach
}

// closedChan is a channel that never blocks.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

// New makes the in-memory container of a record.
func New(r Record) *Container {
	return &Container{Record: r, Exited: make(chan struct{}), Removed: make(chan struct{}), MonitorGone: closedChan}
}

// Running says whether c runs (paused counts); c.Mu is held.
func (c *Container) Running() bool {
	return c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
}

// EndRun marks the run whose end Exited announces as over and makes the
// channel of the next one; c.Mu is held.
func (c *Container) EndRun() {
	exited := c.Exited
	c.Exited = make(chan struct{})
	close(exited)
	c.ClosePending()
}

// ShouldRestart applies the restart policy to a run that just ended;
// c.Mu is held.
func (c *Container) ShouldRestart() bool {
	if c.ManuallyStopped {
		return false
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways, container.RestartPolicyUnlessStopped:
		return true
	case container.RestartPolicyOnFailure:
		return c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// RestartOnBoot is docker's rule for a stopped container when the daemon
// starts: "always" starts it even if it was stopped by hand;
// "unless-stopped" and "on-failure" (after an error, within its retries)
// only if it was not.
func (c *Container) RestartOnBoot() bool {
	if c.State.Status != container.StateExited {
		return false // created and never started: docker leaves it too
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways:
		return true
	case container.RestartPolicyUnlessStopped:
		return !c.ManuallyStopped
	case container.RestartPolicyOnFailure:
		return !c.ManuallyStopped && c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
}

// Mounts are the container's mount points.
func (c *Container) Mounts() []mounts.Point { return mounts.Of(c.MountPoints, c.HostConfig.Binds) }

// VolumeNames are the volumes c mounts.
func (c *Container) VolumeNames() []string { return mounts.VolumeNames(c.Mounts()) }

// Wait blocks until the container reaches condition, and returns its exit
// status then. ready is called once the wait is registered.
func (c *Container) Wait(ctx context.Context, cond container.WaitCondition, ready func()) (container.WaitResponse, error) {
	c.Mu.Lock()
	exited, removed, running := c.Exited, c.Removed, c.Running()
	c.Mu.Unlock()
	ready()
	var ch <-chan struct{}
	switch cond {
	case container.WaitConditionNextExit:
		ch = exited
	case container.WaitConditionRemoved:
		ch = removed
	default:
		if running {
			ch = exited
		}
	}
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return container.WaitResponse{}, ctx.Err()
		}
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	resp := container.WaitResponse{StatusCode: int64(c.State.ExitCode)}
	// A run that ended badly (not a start that failed: the client has
	// that error already) reports its error.
	if c.State.Error != "" && !c.State.StartedAt.IsZero() && c.State.FinishedAt.After(c.State.StartedAt) {
		resp.Error = &container.WaitExitError{Message: c.State.Error}
	}
	return resp, nil
}
