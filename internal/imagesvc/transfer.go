package imagesvc

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/distribution"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/spec"
)

// ImageImport makes an image from a root file system tarball, applying
// Dockerfile-style changes (CMD, ENV, ...), as POST /images/create?fromSrc=-;
// platform ("": the host's) is what the image says it is for, as
// dockerd records it.
func (s *Service) ImageImport(r io.Reader, name string, changes []string, message, platform string) (*images.Image, error) {
	p, err := registry.ParsePlatform(platform)
	if err != nil {
		return nil, err
	}
	if p.OS != "linux" {
		return nil, fmt.Errorf("import: operating system %q is not supported: %w", p.OS, errdefs.ErrInvalidArgument)
	}
	var cfg ocispec.ImageConfig
	for _, ch := range changes {
		if err := ApplyChange(&cfg, ch); err != nil {
			return nil, err
		}
	}
	if message == "" {
		message = "Imported from -"
	}
	img, err := s.store.Import(r, name, cfg, message, ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant})
	if err != nil {
		return nil, err
	}
	s.Event(events.ActionImport, img.ID.String(), name)
	return img, nil
}

// ImageLoad adds the images of a docker-save or OCI archive.
func (s *Service) ImageLoad(r io.Reader) ([]images.Loaded, error) {
	list, err := s.store.Load(r)
	if err != nil {
		return nil, err
	}
	for _, img := range list {
		s.Event(events.ActionLoad, img.ID.String(), strings.Join(img.Tags, ","))
	}
	return list, nil
}

// ImageSave writes the named images as one docker-save archive.
func (s *Service) ImageSave(w io.Writer, refs []string) error {
	for _, r := range refs {
		if _, _, err := s.image(r); err != nil {
			return err
		}
	}
	return s.store.Save(w, refs)
}

// ImagePull fetches ref from its registry (internal/distribution).
func (s *Service) ImagePull(ctx context.Context, ref, platform string, auth registry.Auth, out *distribution.Progress) error {
	return s.dist.Pull(ctx, ref, platform, auth, out)
}

// ImagePush uploads name (every tag, or tag) to its registry.
func (s *Service) ImagePush(ctx context.Context, name, tag string, auth registry.Auth, out *distribution.Progress) error {
	return s.dist.Push(ctx, name, tag, auth, out)
}

// Login checks credentials against a registry.
func (s *Service) Login(ctx context.Context, auth registry.Auth) error {
	return s.dist.Login(ctx, auth)
}

// ApplyChange applies one Dockerfile instruction of `import --change`.
func ApplyChange(cfg *ocispec.ImageConfig, change string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(change), " ")
	arg = strings.TrimSpace(arg)
	bad := func(why string) error {
		return fmt.Errorf("invalid change %q: %s: %w", change, why, errdefs.ErrInvalidArgument)
	}
	cmdForm := func() []string {
		var list []string
		if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &list) == nil {
			return list
		}
		return []string{"/bin/sh", "-c", arg}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		cfg.Cmd = cmdForm()
	case "ENTRYPOINT":
		cfg.Entrypoint = cmdForm()
	case "WORKDIR":
		cfg.WorkingDir = arg
	case "USER":
		cfg.User = arg
	case "STOPSIGNAL":
		cfg.StopSignal = arg
	case "ENV":
		pairs, err := keyValues(arg)
		if err != nil {
			return bad(err.Error())
		}
		for _, kv := range pairs {
			cfg.Env = spec.MergeEnv(cfg.Env, []string{kv[0] + "=" + kv[1]})
		}
	case "LABEL":
		pairs, err := keyValues(arg)
		if err != nil {
			return bad(err.Error())
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(arg) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		var list []string
		if json.Unmarshal([]byte(arg), &list) != nil {
			list = strings.Fields(arg)
		}
		for _, v := range list {
			cfg.Volumes[v] = struct{}{}
		}
	default:
		return bad("only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR can be changed")
	}
	return nil
}

// keyValues parses "k=v k2=v2" (values may be double-quoted) or the old
// "k v" form.
func keyValues(s string) ([][2]string, error) {
	if !strings.Contains(strings.SplitN(s, " ", 2)[0], "=") {
		k, v, ok := strings.Cut(s, " ")
		if !ok || k == "" {
			return nil, fmt.Errorf("expected KEY=VALUE or KEY VALUE")
		}
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("expected KEY=VALUE")
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			v, s = rest[1:end+1], rest[end+2:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
