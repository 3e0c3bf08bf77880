package daemon

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/spec"
)

// Update changes a container's resource limits and restart policy (POST
// /containers/{id}/update, docker update): kept in its record, and
// written to the running container's cgroup. A zero field is unchanged,
// as with dockerd; the checks and their wording are dockerd's.
func (d *Daemon) Update(ref string, u container.UpdateConfig) ([]string, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return nil, err
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	hc := *c.HostConfig
	if err := spec.ApplyUpdate(&hc, u); err != nil {
		return nil, err
	}
	if err := validateHostConfig(&hc); err != nil {
		return nil, err
	}
	running := c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
	if running && c.Task != nil {
		r, err := spec.UpdateResources(&hc)
		if err != nil {
			return nil, err
		}
		if err := c.Task.Update(context.TODO(), r); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
	}
	c.HostConfig = &hc
	if err := d.ctrs.Save(c); err != nil {
		return nil, err
	}
	d.containerEvent(c, "update", nil)
	return []string{}, nil
}
