package daemon

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/checkpoint"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/checkpoints"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/task"
)

// Checkpoints (docs/vm.md): a running container's whole state saved
// under a name, to start from later where it was. A task backend that can
// (task.Checkpointer: the VM backend, through QEMU's own state snapshot)
// writes the state; internal/checkpoints keeps it.

// checkpoints are container id's checkpoints.
func (d *Daemon) checkpoints(id string) checkpoints.Store {
	return checkpoints.Store{Root: filepath.Join(d.dataDir(id), "checkpoints"), Container: id}
}

// CheckpointCreate saves container ref's whole state as checkpoint
// r.CheckpointID; with r.Exit the container then stops (its restart
// policy does not apply), else it runs on.
func (d *Daemon) CheckpointCreate(ref string, r checkpoint.CreateRequest) error {
	if r.CheckpointDir != "" {
		return fmt.Errorf("checkpoints in a directory of the client's choice are not supported: %w", errdefs.ErrNotImplemented)
	}
	if err := checkpoints.CheckName(r.CheckpointID); err != nil {
		return err
	}
	c, err := d.ctrs.GetRunning(ref)
	if err != nil {
		return err
	}
	exited := c.Exited
	err = d.checkpoint(c, r)
	c.Mu.Unlock()
	if err == nil && r.Exit {
		// As a SIGKILL's kill: answered once the container has stopped.
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
		}
	}
	return err
}

// checkpoint does the work of CheckpointCreate; c.Mu is held.
func (d *Daemon) checkpoint(c *containers.Container, r checkpoint.CreateRequest) error {
	if c.State.Status == container.StatePaused {
		return fmt.Errorf("container %s is paused: unpause it to checkpoint it: %w", c.ID, errdefs.ErrConflict)
	}
	if r.Exit && c.HostConfig.AutoRemove {
		return fmt.Errorf("container %s is removed when it stops (--rm), and its checkpoints with it: checkpoint it with --leave-running: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	cp, ok := c.Task.(task.Checkpointer)
	if !ok {
		return fmt.Errorf("checkpointing a process container needs CRIU, which tent does not drive yet (a VM container, --isolation vm, can be): %w", errdefs.ErrNotImplemented)
	}
	eps := map[string]checkpoints.Endpoint{}
	for netID, ep := range d.net.ContainerEndpoints(c.ID) {
		eps[netID] = checkpoints.Endpoint{IP: ep.IP, IP6: ep.IP6, MAC: ep.MAC}
	}
	stopped := c.ManuallyStopped
	err := d.checkpoints(c.ID).Create(r.CheckpointID, eps, func(dir string) error {
		if r.Exit {
			c.ManuallyStopped = true // a saved container is not restarted
		}
		return cp.Checkpoint(context.TODO(), dir, r.Exit)
	})
	if err != nil {
		c.ManuallyStopped = stopped
		return err
	}
	d.containerEvent(c, events.ActionCheckpoint, nil)
	return nil
}

// CheckpointList lists container ref's checkpoints.
func (d *Daemon) CheckpointList(ref string) ([]checkpoint.Summary, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return nil, err
	}
	return d.checkpoints(c.ID).List()
}

// CheckpointDelete removes checkpoint name of container ref.
func (d *Daemon) CheckpointDelete(ref, name string) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	return d.checkpoints(c.ID).Delete(name)
}
