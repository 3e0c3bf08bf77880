package daemon

import (
	"github.com/moby/moby/api/types/mount"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/mounts"
)

// volumeUsers are the containers that mount volume name.
func (d *Daemon) volumeUsers(name string) []string {
	var ids []string
	for _, c := range d.all() {
		c.mu.Lock()
		for _, m := range c.MountPoints {
			if m.Type == mount.TypeVolume && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
		c.mu.Unlock()
	}
	return ids
}

// mounts are the container's mount points.
func (c *ctr) mounts() []mounts.Point { return mounts.Of(c.MountPoints, c.HostConfig.Binds) }

// volumeNames are the volumes c mounts.
func (c *ctr) volumeNames() []string { return mounts.VolumeNames(c.mounts()) }

// removeVolumes removes volumes that nothing uses any more (errors are
// logged: the container they belonged to is gone either way).
func (d *Daemon) removeVolumes(names []string) {
	for _, n := range names {
		if err := d.vols.Remove(n, d.volumeUsers); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
			d.log.Warn("remove volume", "volume", n, "err", err)
		}
	}
}

// mountVolumes mounts the volumes with options that c uses (the first
// user mounts them; internal/volume); c is starting.
func (d *Daemon) mountVolumes(c *ctr) error { return d.vols.Acquire(c.volumeNames()) }

// releaseVolumes undoes mountVolumes once c has stopped.
func (d *Daemon) releaseVolumes(c *ctr) { d.vols.Release(c.volumeNames()) }

// countVolumes counts a running container found at daemon start as a
// user of its volumes, which are still mounted.
func (d *Daemon) countVolumes(c *ctr) { d.vols.Count(c.volumeNames()) }
