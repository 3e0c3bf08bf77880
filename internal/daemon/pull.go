package daemon

import (
	"context"

	"github.com/tent-project/tent/internal/distribution"
	"github.com/tent-project/tent/internal/registry"
)

// ImagePull fetches ref from its registry (internal/distribution).
func (d *Daemon) ImagePull(ctx context.Context, ref, platform string, auth registry.Auth, out *distribution.Progress) error {
	return d.dist.Pull(ctx, ref, platform, auth, out)
}

// ImagePush uploads name (every tag, or tag) to its registry.
func (d *Daemon) ImagePush(ctx context.Context, name, tag string, auth registry.Auth, out *distribution.Progress) error {
	return d.dist.Push(ctx, name, tag, auth, out)
}

// Login checks credentials against a registry.
func (d *Daemon) Login(ctx context.Context, auth registry.Auth) error {
	return d.dist.Login(ctx, auth)
}
