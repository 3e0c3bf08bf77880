package daemon

import (
	"fmt"
	"slices"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
)

// SystemDF answers what is asked (types: "container", "image",
// "volume", "build-cache"; all when empty).
func (d *Daemon) SystemDF(types []string) (*backend.DiskUsage, error) {
	for _, t := range types {
		if !slices.Contains([]string{"container", "image", "volume", "build-cache"}, t) {
			return nil, fmt.Errorf("invalid type: %s: %w", t, errdefs.ErrInvalidArgument)
		}
	}
	want := func(t string) bool { return len(types) == 0 || slices.Contains(types, t) }
	du := &backend.DiskUsage{Images: []image.Summary{}, Containers: []container.Summary{}, Volumes: []volume.Volume{}, BuildCache: []build.CacheRecord{}}
	if want("image") || want("build-cache") {
		if err := d.Usage(du, want("image"), want("build-cache")); err != nil {
			return nil, err
		}
	}
	if want("container") {
		list, err := d.List(backend.ListOpts{All: true, Size: true})
		if err != nil {
			return nil, err
		}
		du.Containers = list
	}
	if want("volume") {
		vols, err := d.VolumeList(nil)
		if err != nil {
			return nil, err
		}
		for _, v := range vols.Volumes {
			v.UsageData = &volume.UsageData{Size: d.vols.Size(v.Name), RefCount: int64(len(d.volumeUsers(v.Name)))}
			du.Volumes = append(du.Volumes, v)
		}
	}
	return du, nil
}
