package daemon

import (
	"io"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/ctrfs"
)

// fs reads containers' file systems (internal/ctrfs).
func (d *Daemon) fs() *ctrfs.FS {
	return &ctrfs.FS{Snap: d.snap, Images: d.images, Views: filepath.Join(d.cfg.ExecRoot, "views")}
}

// fsOf is c's file system as internal/ctrfs finds it.
func (d *Daemon) fsOf(c *containers.Container) ctrfs.Container {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	return d.fsOfLocked(c)
}

// fsOfLocked is fsOf with c.Mu held.
func (d *Daemon) fsOfLocked(c *containers.Container) ctrfs.Container {
	vm := d.runtimes.VM(c.HostConfig.Runtime)
	return ctrfs.Container{ID: c.ID, Key: d.snapshotKey(c.ID), Image: digest.Digest(c.Image), VM: vm, Paths: d.paths(c.ID), Running: c.Running()}
}

// Changes lists what a container changed in its file system (docker
// diff): paths added, modified and deleted over its image.
func (d *Daemon) Changes(ref string) ([]container.FilesystemChange, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return nil, err
	}
	list, err := d.fs().Changes(d.fsOf(c))
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
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	if err := d.fs().Export(d.fsOf(c), w); err != nil {
		return err
	}
	d.containerEvent(c, events.ActionExport, nil)
	return nil
}

// Commit makes an image of a container: its image's layers and one more
// of what it changed, its config (with changes applied), and a history
// entry of its command (docker commit).
func (d *Daemon) Commit(ref string, o backend.CommitOptions) (digest.Digest, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return "", err
	}
	fc := d.fsOf(c)
	if o.Pause && fc.VM == nil { // a VM is committed stopped (ctrfs)
		c.Mu.Lock()
		running := c.State.Status == container.StateRunning
		c.Mu.Unlock()
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
	diffID, err := d.fs().Layer(fc, base.RootFS.DiffIDs)
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
