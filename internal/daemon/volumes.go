package daemon

import (
	"github.com/moby/moby/api/types/mount"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
)

// volumeUsers are the containers that mount volume name.
func (d *Daemon) volumeUsers(name string) []string {
	var ids []string
	for _, c := range d.ctrs.All() {
		c.Mu.Lock()
		for _, m := range c.MountPoints {
			if m.Type == mount.TypeVolume && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
		c.Mu.Unlock()
	}
	return ids
}

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
func (d *Daemon) mountVolumes(c *containers.Container) error { return d.vols.Acquire(c.VolumeNames()) }

// releaseVolumes undoes mountVolumes once c has stopped.
func (d *Daemon) releaseVolumes(c *containers.Container) { d.vols.Release(c.VolumeNames()) }

// countVolumes counts a running container found at daemon start as a
// user of its volumes, which are still mounted.
func (d *Daemon) countVolumes(c *containers.Container) { d.vols.Count(c.VolumeNames()) }
