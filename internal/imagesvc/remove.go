package imagesvc

import (
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
)

// ImageTag names an image.
func (s *Service) ImageTag(ref, name string) error {
	img, _, err := s.image(ref)
	if err != nil {
		return err
	}
	if err := s.store.Tag(img.ID, name); err != nil {
		return err
	}
	s.Event(events.ActionTag, img.ID.String(), name)
	return nil
}

// ImageRemove untags (and, with its last name gone, deletes) an image, as
// `docker rmi`: an image that a container uses stays unless forced, and a
// running container's image stays even then.
func (s *Service) ImageRemove(ref string, force bool) ([]image.DeleteResponse, error) {
	s.Mu.Lock()
	defer s.Mu.Unlock()
	img, _, err := s.image(ref)
	if err != nil {
		return nil, err
	}
	byID := strings.HasPrefix(img.ID.Encoded(), strings.TrimPrefix(ref, "sha256:"))
	var untag []string
	if byID {
		if len(img.Names) > 1 && !force {
			return nil, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", short(img.ID), errdefs.ErrConflict)
		}
		untag = img.Names
	} else {
		full, err := images.Normalize(ref)
		if err != nil {
			return nil, err
		}
		untag = []string{full}
	}
	last := len(untag) == len(img.Names)
	user, running := s.ctrs.ImageUser(img.ID)
	inUse := user != ""
	if last && inUse {
		switch {
		case running:
			return nil, fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s: %w", short(img.ID), user[:12], errdefs.ErrConflict)
		case !force && byID:
			return nil, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s: %w", short(img.ID), user[:12], errdefs.ErrConflict)
		case !force:
			return nil, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w", ref, user[:12], short(img.ID), errdefs.ErrConflict)
		}
	}
	out := []image.DeleteResponse{}
	for _, n := range untag {
		if _, err := s.store.Untag(n); err != nil {
			return out, err
		}
		out = append(out, image.DeleteResponse{Untagged: images.FamiliarName(n)})
		s.Event(events.ActionUnTag, img.ID.String(), n)
	}
	if last && !inUse {
		if err := s.store.Delete(img.ID); err != nil {
			return out, err
		}
		out = append(out, image.DeleteResponse{Deleted: img.ID.String()})
		s.Event(events.ActionDelete, img.ID.String(), "")
	}
	return out, nil
}

func short(id digest.Digest) string { return id.Encoded()[:12] }

// ImagePrune deletes dangling images (all unused ones with all) that no
// container uses.
func (s *Service) ImagePrune(all bool, f backend.PruneFilter) ([]image.DeleteResponse, error) {
	list, err := s.store.List()
	if err != nil {
		return nil, err
	}
	users := s.ctrs.ImageUsers()
	out := []image.DeleteResponse{}
	for _, img := range list {
		if (len(img.Names) > 0 && !all) || img.Cache {
			continue // build cache goes with builder prune
		}
		var labels map[string]string
		if cfg, err := s.store.Config(img.ID); err == nil {
			labels = cfg.Config.Labels
		}
		if !f.Matches(img.Created, labels) {
			continue
		}
		if users[img.ID.String()] > 0 {
			continue
		}
		resp, err := s.ImageRemove(img.ID.String(), true)
		if err != nil {
			return out, err
		}
		out = append(out, resp...)
	}
	return out, nil
}
