package ctrfs

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/volume"
	"golang.org/x/sys/unix"
)

// Copies answers the archive endpoints (docker cp) over the containers'
// roots. The container's paths are resolved by a helper chrooted into
// its root, never here: see internal/copier.
type Copies struct {
	FS      *FS
	Volumes *volume.Store
	Copier  copier.Copier
	// Of is c's file system as FS finds it; c.Mu is held.
	Of func(c *containers.Container) Container
}

// Stat is HEAD /containers/{id}/archive.
func (p Copies) Stat(c *containers.Container, path string) (container.PathStat, error) {
	var st container.PathStat
	err := p.withRoot(c, false, func(root *os.File) (err error) {
		st, err = p.Copier.Stat(root, path)
		return err
	})
	return st, copyError(c, path, err)
}

// Get is GET /containers/{id}/archive: the path's stat and a tar of it,
// to be closed.
func (p Copies) Get(c *containers.Container, path string) (container.PathStat, io.ReadCloser, error) {
	root, release, err := p.openRoot(c, false)
	if err != nil {
		return container.PathStat{}, nil, err
	}
	st, tr, err := p.Copier.Get(root, path)
	root.Close()
	if err != nil {
		release()
		return st, nil, copyError(c, path, err)
	}
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

// Put is PUT /containers/{id}/archive: the tar r extracted into the
// directory path, owned as o says.
func (p Copies) Put(c *containers.Container, path string, r io.Reader, o copier.PutOptions) error {
	c.Mu.Lock()
	o.User = c.Config.User
	pt, inTask := c.Task.(putter)
	inTask = inTask && c.Running()
	c.Mu.Unlock()
	if inTask {
		return copyError(c, path, pt.PutArchive(context.TODO(), path, r, o))
	}
	err := p.withRoot(c, true, func(root *os.File) error {
		return p.Copier.Put(root, path, r, o)
	})
	return copyError(c, path, err)
}

// putter is a running task that extracts an archive into its root
// itself (a VM: its guest alone writes its disk).
type putter interface {
	PutArchive(ctx context.Context, dir string, r io.Reader, o copier.PutOptions) error
}

// copyError names the container in a missing path's error, as dockerd.
func copyError(c *containers.Container, path string, err error) error {
	if err != nil && errdefs.IsNotFound(err) {
		return fmt.Errorf("Could not find the file %s in container %s: %w", path, c.Name, errdefs.ErrNotFound)
	}
	return err
}

func (p Copies) withRoot(c *containers.Container, writable bool, fn func(root *os.File) error) error {
	root, release, err := p.openRoot(c, writable)
	if err != nil {
		return err
	}
	defer release()
	defer root.Close()
	return fn(root)
}

// openRoot opens what c's processes see as "/": its init's root while it
// runs (volumes, binds and tmpfs mounts included), else its file system
// mounted with its volumes and binds on a view of the daemon's, which
// release unmounts. A stopped container's lock is held until release, so
// that it does not start on a half-copied file system (docker holds it
// for any copy). writable: the root is to be written (a put).
func (p Copies) openRoot(c *containers.Container, writable bool) (*os.File, func(), error) {
	c.Mu.Lock()
	if c.Running() {
		ro, ok := c.Task.(task.RootOpener)
		if !ok && p.Of(c).VM != nil {
			// A running VM's files are read from a copy of its disk,
			// its guest having written what it held (ctrfs.MountRoot).
			defer c.Mu.Unlock()
			return p.mountStopped(c, writable)
		}
		c.Mu.Unlock()
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
		c.Mu.Unlock()
		return nil, nil, fmt.Errorf("container %s is being removed: %w", c.ID, errdefs.ErrConflict)
	}
	root, release, err := p.mountStopped(c, writable)
	if err != nil {
		c.Mu.Unlock()
		return nil, nil, err
	}
	return root, func() { release(); c.Mu.Unlock() }, nil
}

// mountStopped mounts c's file system and its volumes and binds on a
// fresh directory; c.Mu is held.
func (p Copies) mountStopped(c *containers.Container, writable bool) (*os.File, func(), error) {
	mnt, unmount, err := p.FS.MountRoot(p.Of(c), writable)
	if err != nil {
		return nil, nil, err
	}
	vols := c.VolumeNames()
	volumesUp := false
	release := func() {
		unmount()
		if volumesUp {
			p.Volumes.Release(vols)
		}
	}
	fail := func(err error) (*os.File, func(), error) {
		release()
		return nil, nil, err
	}
	if err := p.Volumes.Acquire(vols); err != nil {
		return fail(err)
	}
	volumesUp = true
	binds, err := mounts.Spec(p.Volumes, c.Mounts())
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
