package imagesvc

import (
	"fmt"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/health"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/spec"
)

// RunConfig finds the image of a container about to be made (cfg.Image,
// of platform if not "": os[/arch[/variant]]) and merges cfg with the
// image's configuration: its command, environment, health check, shell
// and the rest, as dockerd does. The caller holds Mu until the container
// is recorded (no removal of the image in between).
func (s *Service) RunConfig(cfg *container.Config, platform string) (*images.Image, *container.Config, error) {
	img, err := s.store.Get(cfg.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("No such image: %s: %w", cfg.Image, errdefs.ErrNotFound)
		}
		return nil, nil, err
	}
	dcfg, err := s.store.DockerConfig(img.ID)
	if err != nil {
		return nil, nil, err
	}
	icfg := &dcfg.Image
	icfg.Config = dcfg.Config.ImageConfig
	if err := matchPlatform(cfg.Image, platform, icfg); err != nil {
		return nil, nil, err
	}
	merged := spec.MergeConfig(cfg, icfg)
	merged.Healthcheck = health.Merge(cfg.Healthcheck, dcfg.Config.Healthcheck)
	if len(merged.Shell) == 0 {
		merged.Shell = dcfg.Config.Shell
	}
	return img, merged, nil
}

// matchPlatform checks that an image asked for by platform is of it, as
// dockerd does (no image of another platform is run in its place).
func matchPlatform(ref, platform string, img *ocispec.Image) error {
	if platform == "" {
		return nil
	}
	want, err := registry.ParsePlatform(platform)
	if err != nil {
		return err
	}
	if want.OS != img.OS || want.Architecture != img.Architecture || want.Variant != "" && want.Variant != img.Variant {
		actual := img.OS + "/" + img.Architecture
		if img.Variant != "" {
			actual += "/" + img.Variant
		}
		return fmt.Errorf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s: %w", ref, platform, actual, errdefs.ErrNotFound)
	}
	return nil
}
