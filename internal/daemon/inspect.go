package daemon

import (
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/runtimes"
)

// Inspect describes a container, as GET /containers/{id}/json; with size,
// its writable layer's and whole root file system's sizes too.
func (d *Daemon) Inspect(ref string, size bool) (*container.InspectResponse, error) {
	return d.ctrs.Inspect(ref, size, views{d})
}

// List returns containers, newest first, as GET /containers/json.
func (d *Daemon) List(o backend.ListOpts) ([]container.Summary, error) {
	return d.ctrs.List(o, views{d})
}

// views tells the container store what the engine knows of a container
// (containers.Engine).
type views struct{ d *Daemon }

func (v views) Driver() string                                          { return v.d.driver }
func (v views) FilesDir(c *containers.Container) string                 { return v.d.dataDir(c.ID) }
func (v views) LogPath(c *containers.Container) string                  { return v.d.jsonLogPath(c) }
func (v views) DefaultRuntime() string                                  { return runtimes.Own }
func (v views) GraphDriver(c *containers.Container) *storage.DriverData { return v.d.graphDriver(c) }
func (v views) Mounts(c *containers.Container) []container.MountPoint {
	return mounts.API(v.d.vols, c.Mounts())
}
func (v views) NetworkSettings(c *containers.Container) *container.NetworkSettings {
	return v.d.Networks.SettingsOf(c)
}
func (v views) Sizes(c *containers.Container) (rw, rootfs int64) { return v.d.containerSizes(c) }
func (v views) ImageID(ref string) string                        { return v.d.imageID(ref) }

// graphDriver describes c's root file system as dockerd's overlay2 does:
// its layers' directories (lower, upper, work) and where it is mounted.
func (d *Daemon) graphDriver(c *containers.Container) *storage.DriverData {
	data := map[string]string{"MergedDir": filepath.Join(d.execDir(c.ID), "rootfs")} // where the process backend mounts it
	if ms, err := d.snap.Mounts(d.snapshotKey(c.ID)); err == nil && len(ms) == 1 && ms[0].Type == "overlay" {
		for _, o := range ms[0].Options {
			for opt, key := range map[string]string{"lowerdir=": "LowerDir", "upperdir=": "UpperDir", "workdir=": "WorkDir"} {
				if v, ok := strings.CutPrefix(o, opt); ok {
					data[key] = v
				}
			}
		}
	}
	return &storage.DriverData{Name: d.driver, Data: data}
}

// imageID is the ID of image ref, "" if there is none.
func (d *Daemon) imageID(ref string) string {
	img, err := d.images.Get(ref)
	if err != nil {
		return ""
	}
	return img.ID.String()
}

// containerSizes are the bytes of c's writable layer, and those with its
// image's layers (as stored).
func (d *Daemon) containerSizes(c *containers.Container) (rw, rootfs int64) {
	rw, _ = d.snap.Usage(d.snapshotKey(c.ID))
	rootfs = rw
	if img, err := d.images.Get(c.Image); err == nil {
		rootfs += d.Size(img)
	}
	return rw, rootfs
}
