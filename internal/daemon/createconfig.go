package daemon

import (
	"fmt"
	"strings"

	"github.com/moby/moby/api/types/container"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/task/vmtask"
)

// What a container's create takes that is the daemon's to decide: the
// runtime it runs on, its image's platform (the rest: internal/spec).

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

// isolationVM is the isolation of a VM container (--isolation vm).
const isolationVM = "vm"

// selectRuntime picks the container's runtime: --runtime, or tent-vm for
// --isolation vm, or tent's own; it must be one the daemon has.
func (d *Daemon) selectRuntime(hc *container.HostConfig) error {
	switch iso := strings.ToLower(string(hc.Isolation)); {
	case iso == isolationVM:
		if hc.Runtime != "" && hc.Runtime != vmtask.Name {
			return fmt.Errorf("conflicting options: --isolation vm runs with the %s runtime, not %s: %w", vmtask.Name, hc.Runtime, errdefs.ErrInvalidArgument)
		}
		hc.Runtime = vmtask.Name
	case !hc.Isolation.IsDefault():
		return fmt.Errorf("Invalid isolation: %q - linux only supports 'default' (and tent's 'vm'): %w", hc.Isolation, errdefs.ErrInvalidArgument)
	}
	if hc.Runtime == "" {
		hc.Runtime = d.defaultRuntime
	}
	if hc.Runtime == vmtask.Name {
		hc.Isolation = isolationVM
		if d.vmErr != nil {
			return fmt.Errorf("%w: %w", d.vmErr, errdefs.ErrUnavailable)
		}
	}
	_, err := d.runtime(hc)
	return err
}

// validateHostConfig refuses what the engine cannot do yet, rather than
// accepting and ignoring it: a log driver or option (internal/logfile),
// the rest (internal/spec).
func validateHostConfig(hc *container.HostConfig) error {
	if _, err := logfile.Configure(hc.LogConfig.Type, hc.LogConfig.Config); err != nil {
		return err
	}
	return spec.ValidateHostConfig(hc)
}
