package daemon

import (
	"fmt"
	"slices"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
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
		if err := d.imageUsage(du, want("image"), want("build-cache")); err != nil {
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

// sharedSizes are, per image, the bytes of its layers that other images
// use too, and the bytes of all layers once.
func (d *Daemon) sharedSizes(all []*images.Image) (shared map[digest.Digest]int64, layers int64) {
	users := map[digest.Digest]int{} // images per layer
	sizes := map[digest.Digest]int64{}
	for _, img := range all {
		sz := d.layerSizesOf(img)
		for i, l := range img.Layers {
			users[l]++
			sizes[l] = sz[i]
		}
	}
	for _, n := range sizes {
		layers += n
	}
	shared = map[digest.Digest]int64{}
	for _, img := range all {
		for _, l := range img.Layers {
			if users[l] > 1 {
				shared[img.ID] += sizes[l]
			}
		}
	}
	return shared, layers
}

// imageUsage fills in the images and the build cache.
func (d *Daemon) imageUsage(du *backend.DiskUsage, imgs, cache bool) error {
	all, err := d.images.List()
	if err != nil {
		return err
	}
	shared, layers := d.sharedSizes(all)
	if imgs {
		du.LayersSize = layers
	}
	list, err := d.ImageList(true, nil, false)
	if err != nil {
		return err
	}
	byID := map[string]image.Summary{}
	for _, s := range list {
		byID[s.ID] = s
	}
	for _, img := range all {
		s := byID[img.ID.String()]
		s.SharedSize = shared[img.ID]
		switch {
		case isCache(img) && cache:
			_, used := d.imageInUse(img.ID)
			du.BuildCache = append(du.BuildCache, build.CacheRecord{ID: img.ID.Encoded()[:12], Type: "regular",
				Description: "build step", InUse: used, Shared: s.SharedSize > 0, Size: s.Size - s.SharedSize, CreatedAt: img.Created})
		case !isCache(img) && imgs:
			du.Images = append(du.Images, s)
		}
	}
	return nil
}
