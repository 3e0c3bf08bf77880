package imagesvc

import (
	"fmt"
	"path"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
)

func familiar(names []string) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, n := range names {
		if strings.Contains(n, "@") {
			digests = append(digests, images.FamiliarName(n))
		} else {
			tags = append(tags, images.FamiliarName(n))
		}
	}
	return tags, digests
}

// ImageList lists images, newest first, as GET /images/json.
// With sharedSize, each image's SharedSize (else -1, as dockerd).
func (s *Service) ImageList(all bool, filters map[string][]string, sharedSize bool) ([]image.Summary, error) {
	for k := range filters {
		switch k {
		case "dangling", "label", "reference":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	list, err := s.store.List()
	if err != nil {
		return nil, err
	}
	users := s.ctrs.ImageUsers()
	var shared map[digest.Digest]int64
	if sharedSize {
		shared, _ = s.sharedSizes(list)
	}
	out := []image.Summary{}
	for _, img := range list {
		if img.Cache && !all {
			continue
		}
		cfg, err := s.store.Config(img.ID)
		if err != nil {
			return nil, err
		}
		tags, digests := familiar(append(img.Names, img.RepoDigests...))
		if !imageMatches(tags, cfg.Config.Labels, filters) {
			continue
		}
		created := img.Created
		if cfg.Created != nil {
			created = *cfg.Created
		}
		out = append(out, image.Summary{
			ID: img.ID.String(), RepoTags: tags, RepoDigests: digests, Created: created.Unix(),
			Size: s.Size(img), SharedSize: -1, Labels: cfg.Config.Labels, Containers: users[img.ID.String()],
		})
		if sharedSize {
			out[len(out)-1].SharedSize = shared[img.ID]
		}
	}
	return out, nil
}

func imageMatches(tags []string, labels map[string]string, f map[string][]string) bool {
	if v := f["dangling"]; len(v) > 0 {
		dangling := len(tags) == 0
		if (v[0] == "true" || v[0] == "1") != dangling {
			return false
		}
	}
	if refs := f["reference"]; len(refs) > 0 {
		ok := false
		for _, pattern := range refs {
			for _, t := range tags {
				if matchReference(pattern, t) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return backend.AllLabels(labels, f["label"])
}

// matchReference matches "busybox", "busybox:tag" or a glob like "busy*".
func matchReference(pattern, tag string) bool {
	repo, _, _ := strings.Cut(tag, ":")
	for _, cand := range []string{tag, repo} {
		if ok, _ := path.Match(pattern, cand); ok {
			return true
		}
	}
	return false
}

// ImageInspect describes an image, as GET /images/{name}/json.
func (s *Service) ImageInspect(ref string) (*image.InspectResponse, error) {
	img, cfg, err := s.image(ref)
	if err != nil {
		return nil, err
	}
	tags, digests := familiar(append(img.Names, img.RepoDigests...))
	r := &image.InspectResponse{
		ID: img.ID.String(), RepoTags: tags, RepoDigests: digests, Author: cfg.Author,
		Config: &dockerspec.DockerOCIImageConfig{ImageConfig: cfg.Config}, Architecture: cfg.Architecture,
		Variant: cfg.Variant, Os: cfg.OS, Size: s.Size(img),
		GraphDriver: &storage.DriverData{Name: s.driver, Data: map[string]string{}},
		RootFS:      image.RootFS{Type: cfg.RootFS.Type},
	}
	if dc, err := s.store.DockerConfig(img.ID); err == nil {
		r.Config = &dc.Config // with Healthcheck, OnBuild and Shell
	}
	if cfg.Created != nil {
		r.Created = cfg.Created.Format(time.RFC3339Nano)
	}
	for _, l := range cfg.RootFS.DiffIDs {
		r.RootFS.Layers = append(r.RootFS.Layers, l.String())
	}
	if len(cfg.History) > 0 {
		r.Comment = cfg.History[len(cfg.History)-1].Comment
	}
	return r, nil
}

func (s *Service) image(ref string) (*images.Image, *ocispec.Image, error) {
	img, err := s.store.Get(ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
		}
		return nil, nil, err
	}
	cfg, err := s.store.Config(img.ID)
	return img, cfg, err
}

// ImageHistory lists the image's history, newest first.
func (s *Service) ImageHistory(ref string) ([]image.HistoryResponseItem, error) {
	img, cfg, err := s.image(ref)
	if err != nil {
		return nil, err
	}
	out := []image.HistoryResponseItem{}
	sizes := s.layerSizesOf(img)
	layer := len(img.Layers) - 1
	for i := len(cfg.History) - 1; i >= 0; i-- {
		h := cfg.History[i]
		item := image.HistoryResponseItem{ID: "<missing>", Comment: h.Comment, CreatedBy: h.CreatedBy, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer >= 0 {
			item.Size = sizes[layer]
			layer--
		}
		if i == len(cfg.History)-1 {
			item.ID = img.ID.String()
			item.Tags, _ = familiar(img.Names)
		}
		out = append(out, item)
	}
	return out, nil
}
