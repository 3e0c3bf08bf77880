package daemon

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/task/vmtask"
	"golang.org/x/sys/unix"
)

// withMounted mounts ms read-only on a fresh directory of the daemon's
// for fn, and unmounts it after.
func (d *Daemon) withMounted(ms []snapshot.Mount, fn func(root string) error) error {
	dir := filepath.Join(d.cfg.ExecRoot, "views")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	mnt, err := os.MkdirTemp(dir, "view-")
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

// withImageRoot mounts the root file system of c's image, read-only.
func (d *Daemon) withImageRoot(c *ctr, fn func(root string) error) error {
	conf, err := d.images.Config(digest.Digest(c.Image))
	if err != nil {
		return err
	}
	key := "view-" + stringid.New()
	ms, err := d.snap.View(key, images.ChainKey(conf.RootFS.DiffIDs))
	if err != nil {
		return err
	}
	defer d.snap.Remove(key)
	return d.withMounted(ms, fn)
}

// engineSkip are the engine's mount points that c's image does not have
// (made for the container, not by it), relative to the root.
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

// Changes lists what a container changed in its file system (docker
// diff): paths added, modified and deleted over its image.
func (d *Daemon) Changes(ref string) ([]container.FilesystemChange, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	var list []archive.Change
	if vmRT, ok := d.runtimes[c.HostConfig.Runtime].(*vmtask.Runtime); ok {
		err = d.vmChanges(vmRT, c, "diff", func(_ string, changes []archive.Change) error {
			list = changes
			return nil
		})
	} else {
		err = d.withImageRoot(c, func(root string) error {
			var err error
			list, err = d.snap.Changes(d.snapshotKey(c.ID), root, engineSkip(root))
			return err
		})
	}
	if err != nil {
		return nil, err
	}
	out := make([]container.FilesystemChange, 0, len(list))
	for _, ch := range list {
		out = append(out, container.FilesystemChange{Path: ch.Path, Kind: container.ChangeType(ch.Kind)})
	}
	return out, nil
}

// Export writes a container's file system, flattened, as a tar (docker
// export).
func (d *Daemon) Export(ref string, w io.Writer) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	var skip map[string]bool
	write := func(root string) error {
		_, err := archive.WriteDiff(w, root, skip)
		return err
	}
	if vmRT, ok := d.runtimes[c.HostConfig.Runtime].(*vmtask.Runtime); ok {
		skip = map[string]bool{"lost+found": true} // the disk's file system's, not the container's
		err = d.withVMDisk(vmRT, c, write)
	} else {
		var ms []snapshot.Mount
		if ms, err = d.snap.Merged(d.snapshotKey(c.ID)); err != nil {
			return err
		}
		err = d.withMounted(ms, write)
	}
	if err == nil {
		d.containerEvent(c, events.ActionExport, nil)
	}
	return err
}

// withVMDisk calls fn with the root of a VM container's disk, mounted
// read-only.
func (d *Daemon) withVMDisk(rt *vmtask.Runtime, c *ctr, fn func(root string) error) error {
	return d.withMountedDisk(func(dir string) (func(), error) { return rt.MountDisk(d.paths(c.ID), dir) }, fn)
}

// withMountedDisk calls fn with a directory of its own on which mount
// has mounted a disk, unmounted and removed after.
func (d *Daemon) withMountedDisk(mount func(dir string) (func(), error), fn func(root string) error) error {
	dir, err := os.MkdirTemp(d.cfg.ExecRoot, "vm-disk-")
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

// vmChanges calls fn with a stopped VM container's disk mounted
// read-only at root and what it changes over its image's base disk
// (archive.TreeChanges). A running VM's guest keeps writes in its own
// page cache, not yet on the disk: what (diff, commit) needs it stopped.
func (d *Daemon) vmChanges(rt *vmtask.Runtime, c *ctr, what string, fn func(root string, changes []archive.Change) error) error {
	c.mu.Lock()
	running := c.running()
	c.mu.Unlock()
	if running {
		return fmt.Errorf("%s of a running VM container: stop it first (its guest holds writes that are not on its disk yet): %w", what, errdefs.ErrConflict)
	}
	return d.withVMDisk(rt, c, func(root string) error {
		mountBase := func(dir string) (func(), error) { return rt.MountBase(d.paths(c.ID), dir) }
		return d.withMountedDisk(mountBase, func(base string) error {
			changes, err := archive.TreeChanges(base, root, engineSkip(base), vmIgnore)
			if err != nil {
				return err
			}
			return fn(root, changes)
		})
	})
}

// Commit makes an image of a container: its image's layers and one more
// of what it changed, its config (with changes applied), and a history
// entry of its command (docker commit).
func (d *Daemon) Commit(ref string, o backend.CommitOptions) (digest.Digest, error) {
	c, err := d.get(ref)
	if err != nil {
		return "", err
	}
	vmRT, isVM := d.runtimes[c.HostConfig.Runtime].(*vmtask.Runtime)
	if o.Pause && !isVM { // a VM is committed stopped (vmChanges)
		c.mu.Lock()
		running := c.State.Status == container.StateRunning
		c.mu.Unlock()
		if running {
			if err := d.Pause(c.ID, true); err == nil {
				defer d.Pause(c.ID, false)
			}
		}
	}
	base, err := d.images.DockerConfig(digest.Digest(c.Image))
	if err != nil {
		return "", err
	}
	var diffID digest.Digest
	if isVM {
		err = d.vmChanges(vmRT, c, "commit", func(root string, changes []archive.Change) error {
			var err error
			diffID, err = d.images.AddLayerWritten(base.RootFS.DiffIDs, func(w io.Writer) (digest.Digest, error) {
				return archive.WriteTreeDiff(w, root, changes)
			})
			return err
		})
	} else {
		err = d.withImageRoot(c, func(root string) error {
			var err error
			diffID, err = d.images.AddLayer(d.snapshotKey(c.ID), base.RootFS.DiffIDs, engineSkip(root))
			return err
		})
	}
	if err != nil {
		return "", err
	}
	id, err := d.CommitImage(base, diffID, c.Config, o, strings.Join(append([]string{c.Path}, c.Args...), " "))
	if err != nil {
		return "", err
	}
	d.containerEvent(c, events.ActionCommit, map[string]string{"comment": o.Comment})
	return id, nil
}
