package daemon

import (
	"context"
	"fmt"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/spec"
)

// Update changes a container's resource limits and restart policy (POST
// /containers/{id}/update, docker update): kept in its record, and
// written to the running container's cgroup. A zero field is unchanged,
// as with dockerd; the checks and their wording are dockerd's.
func (d *Daemon) Update(ref string, u container.UpdateConfig) ([]string, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	hc := *c.HostConfig
	if err := applyUpdate(&hc, u); err != nil {
		return nil, err
	}
	if err := validateHostConfig(&hc); err != nil {
		return nil, err
	}
	running := c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
	if running && c.task != nil {
		r, err := spec.UpdateResources(&hc)
		if err != nil {
			return nil, err
		}
		if err := c.task.Update(context.TODO(), r); err != nil {
			return nil, fmt.Errorf("Cannot update container %s: %w", c.ID, err)
		}
	}
	c.HostConfig = &hc
	if err := d.save(c); err != nil {
		return nil, err
	}
	d.containerEvent(c, "update", nil)
	return []string{}, nil
}

// applyUpdate sets the fields u gives on hc.
func applyUpdate(hc *container.HostConfig, u container.UpdateConfig) error {
	r := u.Resources
	conflict := func(msg string) error { return fmt.Errorf("%s: %w", msg, errdefs.ErrInvalidArgument) }
	switch {
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		return conflict("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		return conflict("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case r.NanoCPUs > 0 && (hc.CPUQuota > 0 || hc.CPUPeriod > 0):
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set")
	case (r.CPUPeriod > 0 || r.CPUQuota > 0) && hc.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Quota/Period cannot be updated as NanoCPUs has already been set")
	}
	if r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0 {
		return fmt.Errorf("real-time CPU limits (--cpu-rt-period, --cpu-rt-runtime) are not supported: %w", errdefs.ErrNotImplemented)
	}
	// What an update could carry but does not change here: refused, not
	// taken and dropped.
	if r.MemorySwappiness != nil || r.OomKillDisable != nil ||
		len(r.BlkioWeightDevice) > 0 || len(r.BlkioDeviceReadBps) > 0 || len(r.BlkioDeviceWriteBps) > 0 ||
		len(r.BlkioDeviceReadIOps) > 0 || len(r.BlkioDeviceWriteIOps) > 0 || len(r.Devices) > 0 ||
		len(r.DeviceCgroupRules) > 0 || len(r.Ulimits) > 0 || r.CPUCount != 0 || r.CPUPercent != 0 {
		return fmt.Errorf("update can change memory, swap, reservation, cpus, cpu shares, period and quota, cpusets, pids, blkio weight and the restart policy only: %w", errdefs.ErrNotImplemented)
	}
	if r.BlkioWeight != 0 {
		if !cgroups.BlkioWeightSupported() {
			return fmt.Errorf("Your kernel does not support Block I/O weight or the cgroup is not mounted: %w", errdefs.ErrInvalidArgument)
		}
		hc.BlkioWeight = r.BlkioWeight
	}
	if r.CPUShares != 0 {
		hc.CPUShares = r.CPUShares
	}
	if r.NanoCPUs != 0 {
		hc.NanoCPUs = r.NanoCPUs
	}
	if r.CPUPeriod != 0 {
		hc.CPUPeriod = r.CPUPeriod
	}
	if r.CPUQuota != 0 {
		hc.CPUQuota = r.CPUQuota
	}
	if r.CpusetCpus != "" {
		hc.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		hc.CpusetMems = r.CpusetMems
	}
	if r.Memory != 0 {
		swap := hc.MemorySwap
		if swap == 0 && hc.Memory > 0 {
			swap = 2 * hc.Memory // the default the container runs with
		}
		if r.Memory > swap && r.MemorySwap == 0 { // also with no limit (0) or unlimited swap (-1), as dockerd
			return fmt.Errorf("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time: %w", errdefs.ErrConflict)
		}
		hc.Memory, hc.MemorySwap = r.Memory, swap
	}
	if r.MemorySwap != 0 {
		if hc.Memory == 0 {
			return conflict("You should always set the Memory limit when using Memoryswap limit")
		}
		if r.MemorySwap > 0 && r.MemorySwap < hc.Memory {
			return conflict("Minimum memoryswap limit should be larger than memory limit, see usage")
		}
		hc.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		hc.MemoryReservation = r.MemoryReservation
	}
	if r.PidsLimit != nil {
		hc.PidsLimit = r.PidsLimit
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	return nil
}
