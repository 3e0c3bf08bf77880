package daemon

import (
	"io"
	"os"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/ctrfs"
)

// The archive endpoints (docker cp). The container's paths are resolved
// by a helper chrooted into its root, never here: see internal/copier.

// copier runs the helper from the daemon's own binary (tentd copier ...):
// not the monitor's, which every container start runs and which must stay
// free of the archive code's dependencies (and their init costs).
func (d *Daemon) copier() copier.Copier {
	exe, err := os.Executable()
	if err != nil {
		exe = "/proc/self/exe"
	}
	return copier.Copier{Bin: exe}
}

// copies answers the archive endpoints (internal/ctrfs).
func (d *Daemon) copies() ctrfs.Copies {
	return ctrfs.Copies{FS: d.fs(), Volumes: d.vols, Copier: d.copier(), Of: d.fsOfLocked}
}

// ArchiveStat is HEAD /containers/{id}/archive.
func (d *Daemon) ArchiveStat(ref, path string) (container.PathStat, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	return d.copies().Stat(c, path)
}

// ArchiveGet is GET /containers/{id}/archive: the path's stat and a tar
// of it, to be closed.
func (d *Daemon) ArchiveGet(ref, path string) (container.PathStat, io.ReadCloser, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return container.PathStat{}, nil, err
	}
	st, tr, err := d.copies().Get(c, path)
	if err == nil {
		d.containerEvent(c, events.ActionArchivePath, map[string]string{"path": path})
	}
	return st, tr, err
}

// ArchivePut is PUT /containers/{id}/archive: the tar r extracted into
// the directory path.
func (d *Daemon) ArchivePut(ref, path string, r io.Reader, o copier.PutOptions) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	if err := d.copies().Put(c, path, r, o); err != nil {
		return err
	}
	d.containerEvent(c, events.ActionExtractToDir, map[string]string{"path": path})
	return nil
}
