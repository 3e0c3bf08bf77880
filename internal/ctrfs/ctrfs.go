// Package ctrfs reads a container's file system for the engine: what it
// changed over its image (docker diff, and the layer docker commit
// adds), all of it flattened (docker export), and its root mounted on
// the daemon's side (cp of a stopped container). A process container's
// files are its snapshot over its image's layers; a VM container's are
// on its own disk, read against its image's base disk, and only while
// it is stopped (a running guest holds writes that are not on the disk
// yet).
package ctrfs

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/vmtask"
	"golang.org/x/sys/unix"
)

// FS reads containers' file systems.
type FS struct {
	Snap   snapshot.Snapshotter
	Images *images.Store
	// Views is the directory under which roots are mounted for a while.
	Views string
}

// Container is a container's file system as FS finds it.
type Container struct {
	ID string
	// Key is the container's snapshot (a process container's; a VM's
	// root file system, from which its disk is made).
	Key   string
	Image digest.Digest
	// VM is the runtime of a VM container, whose disk is at Paths
	// (nil: a process container).
	VM      *vmtask.Runtime
	Paths   task.Paths
	Running bool
}

// Changes lists what c changed over its image.
func (f *FS) Changes(c Container) ([]archive.Change, error) {
	var list []archive.Change
	var err error
	if c.VM != nil {
		err = f.vmChanges(c, func(_ string, changes []archive.Change) error {
			list = changes
			return nil
		})
	} else {
		err = f.withImageRoot(c.Image, func(root string) error {
			var err error
			list, err = f.Snap.Changes(c.Key, root, engineSkip(root))
			return err
		})
	}
	return list, err
}

// Export writes c's file system, flattened, as a tar.
func (f *FS) Export(c Container, w io.Writer) error {
	var skip map[string]bool
	write := func(root string) error {
		_, err := archive.WriteDiff(w, root, skip)
		return err
	}
	if c.VM != nil {
		skip = map[string]bool{"lost+found": true} // the disk's file system's, not the container's
		return f.withVMDisk(c, write)
	}
	ms, err := f.Snap.Merged(c.Key)
	if err != nil {
		return err
	}
	return f.withMounted(ms, write)
}

// Layer adds to the image store the layer of what c changed over its
// image, whose layers are base, and returns its diff ID (docker commit).
func (f *FS) Layer(c Container, base []digest.Digest) (digest.Digest, error) {
	var diffID digest.Digest
	var err error
	if c.VM != nil {
		err = f.vmChanges(c, func(root string, changes []archive.Change) error {
			var err error
			diffID, err = f.Images.AddLayerWritten(base, func(w io.Writer) (digest.Digest, error) {
				return archive.WriteTreeDiff(w, root, changes)
			})
			return err
		})
	} else {
		err = f.withImageRoot(c.Image, func(root string) error {
			var err error
			diffID, err = f.Images.AddLayer(c.Key, base, engineSkip(root))
			return err
		})
	}
	return diffID, err
}

// MountRoot mounts c's root file system on a new directory, which
// release unmounts with whatever was mounted below it since, and
// removes. A VM's disk is mounted read-only unless writable (cp into a
// stopped VM; a running one's is written by its guest alone).
func (f *FS) MountRoot(c Container, writable bool) (dir string, release func(), err error) {
	if err := os.MkdirAll(f.Views, 0o700); err != nil {
		return "", nil, err
	}
	mnt, err := os.MkdirTemp(f.Views, "copy-")
	if err != nil {
		return "", nil, err
	}
	unmountDisk := func() {}
	switch {
	case c.VM != nil && writable && c.Running:
		// Its task copies into it (vmtask PutArchive); here only if it
		// started after the copy looked.
		err = fmt.Errorf("the VM container started while the copy began (its guest alone writes its disk now): try again: %w", errdefs.ErrConflict)
	case c.VM != nil && writable:
		var ms []snapshot.Mount
		if ms, err = f.Snap.Mounts(c.Key); err == nil {
			err = c.VM.EnsureDisk(c.ID, c.Paths, ms) // a VM that never ran has none yet
		}
		if err == nil {
			unmountDisk, err = c.VM.MountDiskWritable(c.Paths, mnt)
		}
	case c.VM != nil:
		unmountDisk, err = mountVMDisk(c, mnt)
	default:
		var ms []snapshot.Mount
		if ms, err = f.Snap.Mounts(c.Key); err == nil {
			err = snapshot.MountAll(ms, mnt)
		}
	}
	if err != nil {
		os.Remove(mnt)
		return "", nil, err
	}
	return mnt, func() {
		if c.VM != nil && writable {
			// What was written goes through the loop device to the
			// export (a flush reaches qemu-storage-daemon) before the
			// lazy unmount below, which would not wait for it.
			if fd, err := unix.Open(mnt, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err == nil {
				unix.Syncfs(fd)
				unix.Close(fd)
			}
		}
		unix.Unmount(mnt, unix.MNT_DETACH) // the root and every mount below it
		unmountDisk()
		os.Remove(mnt)
	}, nil
}

// withMounted mounts ms read-only on a new directory for fn, and
// unmounts it after.
func (f *FS) withMounted(ms []snapshot.Mount, fn func(root string) error) error {
	if err := os.MkdirAll(f.Views, 0o700); err != nil {
		return err
	}
	mnt, err := os.MkdirTemp(f.Views, "view-")
	if err != nil {
		return err
	}
	defer os.Remove(mnt)
	if err := snapshot.MountAll(ms, mnt); err != nil {
		return err
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	return fn(mnt)
}

// withImageRoot mounts the root file system of image, read-only.
func (f *FS) withImageRoot(image digest.Digest, fn func(root string) error) error {
	conf, err := f.Images.Config(image)
	if err != nil {
		return err
	}
	key := "view-" + stringid.New()
	ms, err := f.Snap.View(key, images.ChainKey(conf.RootFS.DiffIDs))
	if err != nil {
		return err
	}
	defer f.Snap.Remove(key)
	return f.withMounted(ms, fn)
}

// engineSkip are the engine's mount points that an image (its root at
// imageRoot) does not have: made for the container, not by it; relative
// to the root.
func engineSkip(imageRoot string) map[string]bool {
	skip := map[string]bool{}
	for _, t := range spec.EngineMountpoints {
		for p := t; p != "/"; p = path.Dir(p) {
			if _, err := os.Lstat(filepath.Join(imageRoot, p)); errors.Is(err, fs.ErrNotExist) {
				skip[strings.TrimPrefix(p, "/")] = true
			}
		}
	}
	return skip
}

// withVMDisk calls fn with the root of a VM container's disk, mounted
// read-only.
func (f *FS) withVMDisk(c Container, fn func(root string) error) error {
	return f.withMountedDisk(func(dir string) (func(), error) { return mountVMDisk(c, dir) }, fn)
}

// mountVMDisk mounts a copy of a VM container's disk read-only at dir;
// a running VM's guest first writes what it holds to it. What it reads
// is the disk at one moment: what the guest writes after is not in it.
func mountVMDisk(c Container, dir string) (func(), error) {
	if c.Running {
		if err := c.VM.Sync(c.Paths); err != nil {
			return nil, err
		}
	}
	return c.VM.MountDisk(c.Paths, dir)
}

// withMountedDisk calls fn with a directory of its own on which mount
// has mounted a disk, unmounted and removed after.
func (f *FS) withMountedDisk(mount func(dir string) (func(), error), fn func(root string) error) error {
	if err := os.MkdirAll(f.Views, 0o700); err != nil {
		return err
	}
	dir, err := os.MkdirTemp(f.Views, "vm-disk-")
	if err != nil {
		return err
	}
	defer os.Remove(dir)
	unmount, err := mount(dir)
	if err != nil {
		return err
	}
	defer unmount()
	return fn(dir)
}

// vmIgnore are the paths of a VM's disk that are the engine's, not the
// container's: its own file system's lost+found, and the files the agent
// writes at each boot (a container's are bind mounts, in no layer).
var vmIgnore = map[string]bool{"lost+found": true, "etc/hosts": true, "etc/hostname": true, "etc/resolv.conf": true}

// vmChanges calls fn with a VM container's disk mounted read-only at
// root and what it changes over its image's base disk
// (archive.TreeChanges).
func (f *FS) vmChanges(c Container, fn func(root string, changes []archive.Change) error) error {
	return f.withVMDisk(c, func(root string) error {
		mountBase := func(dir string) (func(), error) { return c.VM.MountBase(c.Paths, dir) }
		return f.withMountedDisk(mountBase, func(base string) error {
			changes, err := archive.TreeChanges(base, root, engineSkip(base), vmIgnore)
			if err != nil {
				return err
			}
			return fn(root, changes)
		})
	})
}
