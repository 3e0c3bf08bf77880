package imagesvc

import (
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/spec"
)

// CommitImage makes the image of a committed container (docker commit):
// base's layers and diffID (the container's changes), its config from
// the container's (ctr) with the request's fields over it and the
// request's changes applied, and a history entry of its command
// (createdBy); tagged as the request asks.
func (s *Service) CommitImage(base *dockerspec.DockerOCIImage, diffID digest.Digest, ctr *container.Config, o backend.CommitOptions, createdBy string) (digest.Digest, error) {
	conf := *base
	conf.RootFS.DiffIDs = append(append([]digest.Digest(nil), base.RootFS.DiffIDs...), diffID)
	cc := *ctr
	if u := o.Config; u != nil { // the request's fields over the container's
		if u.Cmd != nil {
			cc.Cmd = u.Cmd
		}
		if u.Entrypoint != nil {
			cc.Entrypoint = u.Entrypoint
		}
		if len(u.Env) > 0 {
			cc.Env = spec.MergeEnv(cc.Env, u.Env)
		}
		if u.User != "" {
			cc.User = u.User
		}
		if u.WorkingDir != "" {
			cc.WorkingDir = u.WorkingDir
		}
		cc.Labels = mapsMerged(cc.Labels, u.Labels)
		cc.ExposedPorts = mapsMerged(cc.ExposedPorts, u.ExposedPorts)
		cc.Volumes = mapsMerged(cc.Volumes, u.Volumes)
	}
	commitConfig(&conf.Config, &cc)
	for _, ch := range o.Changes {
		if err := ApplyChange(&conf.Config.ImageConfig, ch); err != nil {
			return "", err
		}
	}
	created := time.Now().UTC()
	conf.Created = &created
	if o.Author != "" {
		conf.Author = o.Author
	}
	conf.History = append(conf.History, ocispec.History{Created: &created, Author: o.Author, Comment: o.Comment,
		CreatedBy: createdBy})
	img, err := s.store.Create(&conf, false)
	if err != nil {
		return "", err
	}
	if o.Repo != "" {
		name := o.Repo
		if o.Tag != "" {
			name += ":" + o.Tag
		}
		if err := s.store.Tag(img.ID, name); err != nil {
			return "", err
		}
	}
	return img.ID, nil
}

// mapsMerged is a with b's entries over it (a new map when b has any).
func mapsMerged[K comparable, V any](a, b map[K]V) map[K]V {
	if len(b) == 0 {
		return a
	}
	out := make(map[K]V, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// commitConfig takes a container's config into its image's, as docker
// commit does.
func commitConfig(ic *dockerspec.DockerOCIImageConfig, cc *container.Config) {
	ic.Cmd, ic.Entrypoint = cc.Cmd, cc.Entrypoint
	ic.Env, ic.User, ic.WorkingDir, ic.StopSignal = cc.Env, cc.User, cc.WorkingDir, cc.StopSignal
	ic.Labels = cc.Labels
	if len(cc.ExposedPorts) > 0 {
		ic.ExposedPorts = map[string]struct{}{}
		for p := range cc.ExposedPorts {
			ic.ExposedPorts[p.String()] = struct{}{}
		}
	}
	if len(cc.Volumes) > 0 {
		ic.Volumes = cc.Volumes
	}
	if cc.Healthcheck != nil {
		h := dockerspec.HealthcheckConfig{Test: cc.Healthcheck.Test, Interval: cc.Healthcheck.Interval,
			Timeout: cc.Healthcheck.Timeout, StartPeriod: cc.Healthcheck.StartPeriod,
			StartInterval: cc.Healthcheck.StartInterval, Retries: cc.Healthcheck.Retries}
		ic.Healthcheck = &h
	}
	if len(cc.Shell) > 0 {
		ic.Shell = cc.Shell
	}
}
