package server

import (
	"encoding/json"
	"fmt"
	"net/http"
	goruntime "runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
)

// The platform parameters of the image endpoints (JSON-encoded OCI
// platforms: push since 1.46, history, save and load since 1.48, inspect
// since 1.49) select one platform of a multi-platform image. An image of
// tent's is one platform, so a platform is either the image's own (the
// request goes on) or not there (refused: never the image's own platform
// handed out in place of the one asked for).

// platformParam is the request's platform parameter, nil if it has none
// or its version had none.
func platformParam(r *http.Request, since string) (*ocispec.Platform, error) {
	v := sinceVersion(r, "platform", since)
	if v == "" {
		return nil, nil
	}
	var p ocispec.Platform
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return nil, fmt.Errorf("invalid platform %q: %v: %w", v, err, errdefs.ErrInvalidArgument)
	}
	return &p, nil
}

func formatPlatform(os, arch, variant string) string {
	return strings.TrimSuffix(os+"/"+arch+"/"+variant, "/")
}

// matches says whether the platform asked for (its empty fields match
// anything) is os/arch/variant.
func matches(p *ocispec.Platform, os, arch, variant string) bool {
	return (p.OS == "" || p.OS == os) && (p.Architecture == "" || p.Architecture == arch) && (p.Variant == "" || p.Variant == variant)
}

// checkPlatforms refuses a request whose platform parameter is not the
// platform of each image named.
func (s *Server) checkPlatforms(r *http.Request, since string, names ...string) error {
	p, err := platformParam(r, since)
	if p == nil {
		return err
	}
	for _, n := range names {
		img, err := s.d.ImageInspect(n)
		if err != nil {
			return err
		}
		if !matches(p, img.Os, img.Architecture, img.Variant) {
			return fmt.Errorf("image %s is %s, not %s (tent keeps one platform per image): %w", n,
				formatPlatform(img.Os, img.Architecture, img.Variant), formatPlatform(p.OS, p.Architecture, p.Variant), errdefs.ErrNotFound)
		}
	}
	return nil
}

// checkLoadPlatform refuses a load asked for another platform than the
// host's, the one whose manifest a load takes from a multi-platform
// archive.
func checkLoadPlatform(r *http.Request) error {
	p, err := platformParam(r, "1.48")
	if p == nil {
		return err
	}
	if !matches(p, "linux", goruntime.GOARCH, p.Variant) {
		return fmt.Errorf("loading the images of platform %s is not supported yet (only this host's, linux/%s): %w",
			formatPlatform(p.OS, p.Architecture, p.Variant), goruntime.GOARCH, errdefs.ErrNotImplemented)
	}
	return nil
}
