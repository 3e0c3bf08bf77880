package daemon

import (
	"context"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/stats"
	"github.com/tent-project/tent/internal/task/vmtask"
)

// Stats sends a container's resource usage (GET /containers/{id}/stats;
// internal/stats). A container that is not running gets one empty
// sample, as from dockerd.
func (d *Daemon) Stats(ctx context.Context, ref string, stream, oneShot bool, send func(*container.StatsResponse) error) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	return stats.Stream(ctx, stream, oneShot, func() *container.StatsResponse { return d.sample(ctx, c) }, send)
}

// sample reads c's counters now; a container that does not run has none
// (and a zero Read).
func (d *Daemon) sample(ctx context.Context, c *containers.Container) *container.StatsResponse {
	c.Mu.Lock()
	s := &container.StatsResponse{ID: c.ID, Name: "/" + c.Name, OSType: "linux"}
	t, pid := c.Task, c.State.Pid
	running := c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
	// A VM's network is its guest's, not that of its QEMU's namespace.
	ownNet := !c.HostConfig.NetworkMode.IsHost() && !c.HostConfig.NetworkMode.IsContainer() && c.HostConfig.Runtime != vmtask.Name
	c.Mu.Unlock()
	if !running || t == nil {
		return s
	}
	cs, err := t.Stats(ctx)
	if err != nil {
		return s
	}
	stats.Fill(s, cs, pid, ownNet)
	return s
}
