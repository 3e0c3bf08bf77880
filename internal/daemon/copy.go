package daemon

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/ctrfs"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/vmtask"
	"golang.org/x/sys/unix"
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

// ArchiveStat is HEAD /containers/{id}/archive.
func (d *Daemon) ArchiveStat(ref, path string) (container.PathStat, error) {
	c, err := d.get(ref)
	if err != nil {
		return container.PathStat{}, err
	}
	var st container.PathStat
	err = d.withRoot(c, func(root *os.File) error {
		st, err = d.copier().Stat(root, path)
		return err
	})
	return st, d.copyError(c, path, err)
}

// ArchiveGet is GET /containers/{id}/archive: the path's stat and a tar
// of it, to be closed.
func (d *Daemon) ArchiveGet(ref, path string) (container.PathStat, io.ReadCloser, error) {
	c, err := d.get(ref)
	if err != nil {
		return container.PathStat{}, nil, err
	}
	root, release, err := d.openRoot(c)
	if err != nil {
		return container.PathStat{}, nil, err
	}
	st, tr, err := d.copier().Get(root, path)
	root.Close()
	if err != nil {
		release()
		return st, nil, d.copyError(c, path, err)
	}
	d.containerEvent(c, events.ActionArchivePath, map[string]string{"path": path})
	return st, &releasing{ReadCloser: tr, release: release}, nil
}

type releasing struct {
	io.ReadCloser
	release func()
}

func (r *releasing) Close() error {
	err := r.ReadCloser.Close()
	r.release()
	return err
}

// ArchivePut is PUT /containers/{id}/archive: the tar r extracted into
// the directory path.
func (d *Daemon) ArchivePut(ref, path string, r io.Reader, o copier.PutOptions) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	if err := onDisk(c, "copying files into a container"); err != nil { // a stopped VM's disk is read, not written
		return err
	}
	c.mu.Lock()
	o.User = c.Config.User
	c.mu.Unlock()
	err = d.withRoot(c, func(root *os.File) error {
		return d.copier().Put(root, path, r, o)
	})
	if err != nil {
		return d.copyError(c, path, err)
	}
	d.containerEvent(c, events.ActionExtractToDir, map[string]string{"path": path})
	return nil
}

// copyError names the container in a missing path's error, as dockerd.
func (d *Daemon) copyError(c *ctr, path string, err error) error {
	if err != nil && errdefs.IsNotFound(err) {
		return fmt.Errorf("Could not find the file %s in container %s: %w", path, c.Name, errdefs.ErrNotFound)
	}
	return err
}

func (d *Daemon) withRoot(c *ctr, fn func(root *os.File) error) error {
	root, release, err := d.openRoot(c)
	if err != nil {
		return err
	}
	defer release()
	defer root.Close()
	return fn(root)
}

// onDisk refuses what reads a container's file system through its
// snapshot for a VM container, whose file system is its own disk.
func onDisk(c *ctr, what string) error {
	if c.HostConfig.Runtime == vmtask.Name {
		return fmt.Errorf("%s: not supported for VM containers yet (their files are on their own disk): %w", what, errdefs.ErrNotImplemented)
	}
	return nil
}

// openRoot opens what c's processes see as "/": its init's root while it
// runs (volumes, binds and tmpfs mounts included), else its file system
// mounted with its volumes and binds on a view of the daemon's, which
// release unmounts. A stopped container's lock is held until release, so
// that it does not start on a half-copied file system (docker holds it
// for any copy).
func (d *Daemon) openRoot(c *ctr) (*os.File, func(), error) {
	c.mu.Lock()
	if c.State.Status == container.StateRunning || c.State.Status == container.StatePaused {
		ro, ok := c.task.(task.RootOpener)
		c.mu.Unlock()
		if !ok {
			return nil, nil, fmt.Errorf("copying into or out of a running container of this runtime: %w", errdefs.ErrNotImplemented)
		}
		root, err := ro.OpenRoot(context.TODO())
		if err != nil {
			return nil, nil, err
		}
		return root, func() {}, nil
	}
	if c.State.Status == container.StateRemoving || c.State.Status == container.StateDead {
		c.mu.Unlock()
		return nil, nil, fmt.Errorf("container %s is being removed: %w", c.ID, errdefs.ErrConflict)
	}
	root, release, err := d.mountStopped(c)
	if err != nil {
		c.mu.Unlock()
		return nil, nil, err
	}
	return root, func() { release(); c.mu.Unlock() }, nil
}

// mountStopped mounts c's file system (internal/ctrfs) and its volumes
// and binds on a fresh directory; c.mu is held.
func (d *Daemon) mountStopped(c *ctr) (*os.File, func(), error) {
	vm, _ := d.runtimes[c.HostConfig.Runtime].(*vmtask.Runtime)
	mnt, unmount, err := d.fs().MountRoot(ctrfs.Container{Key: d.snapshotKey(c.ID), VM: vm, Paths: d.paths(c.ID)})
	if err != nil {
		return nil, nil, err
	}
	volumesUp := false
	release := func() {
		unmount()
		if volumesUp {
			d.releaseVolumes(c)
		}
	}
	fail := func(err error) (*os.File, func(), error) {
		release()
		return nil, nil, err
	}
	if err := d.mountVolumes(c); err != nil {
		return fail(err)
	}
	volumesUp = true
	binds, err := mounts.Spec(d.vols, c.mounts())
	if err != nil {
		return fail(err)
	}
	if err := mounts.BindAll(mnt, binds); err != nil {
		return fail(err)
	}
	root, err := os.OpenFile(mnt, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fail(err)
	}
	return root, release, nil
}
