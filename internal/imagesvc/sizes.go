package imagesvc

import (
	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/images"
)

// Size is the sum of the image's stored layers (uncompressed for
// imported images, as given for loaded ones).
func (s *Service) Size(img *images.Image) int64 {
	var n int64
	for _, sz := range s.layerSizesOf(img) {
		n += sz
	}
	return n
}

// layerSizesOf are the sizes of img's layers as dockerd counts them: the
// bytes of each layer's files once unpacked (not the blob's, which a
// pulled image has compressed). Where the layer's own files cannot be
// counted (the native snapshotter keeps whole copies), the blob's size.
func (s *Service) layerSizesOf(img *images.Image) []int64 {
	out := make([]int64, len(img.Layers))
	var diffIDs []digest.Digest
	if cfg, err := s.store.Config(img.ID); err == nil && len(cfg.RootFS.DiffIDs) == len(img.Layers) && s.driver == OverlayDriver {
		diffIDs = cfg.RootFS.DiffIDs
	}
	for i, l := range img.Layers {
		if diffIDs == nil {
			out[i], _ = s.content.Size(l)
			continue
		}
		key := images.ChainKey(diffIDs[:i+1])
		s.sizeMu.Lock()
		n, ok := s.sizes[key]
		s.sizeMu.Unlock()
		if !ok {
			var err error
			if n, err = s.snap.Usage(key); err != nil {
				out[i], _ = s.content.Size(l)
				continue
			}
			s.sizeMu.Lock()
			if s.sizes == nil {
				s.sizes = map[string]int64{}
			}
			s.sizes[key] = n
			s.sizeMu.Unlock()
		}
		out[i] = n
	}
	return out
}

// sharedSizes are, per image, the bytes of its layers that other images
// use too, and the bytes of all layers once.
func (s *Service) sharedSizes(all []*images.Image) (shared map[digest.Digest]int64, layers int64) {
	users := map[digest.Digest]int{} // images per layer
	sizes := map[digest.Digest]int64{}
	for _, img := range all {
		sz := s.layerSizesOf(img)
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

// Usage fills in the images and the build cache.
func (s *Service) Usage(du *backend.DiskUsage, imgs, cache bool) error {
	all, err := s.store.List()
	if err != nil {
		return err
	}
	shared, layers := s.sharedSizes(all)
	if imgs {
		du.LayersSize = layers
	}
	list, err := s.ImageList(true, nil, false)
	if err != nil {
		return err
	}
	byID := map[string]image.Summary{}
	for _, sum := range list {
		byID[sum.ID] = sum
	}
	for _, img := range all {
		sum := byID[img.ID.String()]
		sum.SharedSize = shared[img.ID]
		switch {
		case img.Cache && cache:
			du.BuildCache = append(du.BuildCache, build.CacheRecord{ID: img.ID.Encoded()[:12], Type: "regular",
				Description: "build step", InUse: sum.Containers > 0, Shared: sum.SharedSize > 0, Size: sum.Size - sum.SharedSize, CreatedAt: img.Created})
		case !img.Cache && imgs:
			du.Images = append(du.Images, sum)
		}
	}
	return nil
}
