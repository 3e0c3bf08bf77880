package server

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
)

// Requests of older clients: a field a version did not have yet is
// dropped (an old client cannot have meant it), a default that changed
// keeps the old value for the old client, and what is newer than the
// request's version and cannot be ignored safely is refused, as dockerd
// does (the Engine API's version history; docs/engine.md). Answers are
// shaped in versions.go.

// createCompat brings a create request of API version v to today's
// meaning, and says what the backend must know of it.
func createCompat(v string, req *container.CreateRequest) (backend.CreateOpts, error) {
	var o backend.CreateOpts
	if req.Config == nil {
		return o, nil // refused by the backend, in dockerd's words
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	hc, cfg := req.HostConfig, req.Config
	if versionLess(v, "1.25") {
		hc.AutoRemove = false // the client removed the container itself
	}
	if versionLess(v, "1.40") {
		for _, m := range hc.Mounts {
			if m.BindOptions != nil {
				m.BindOptions.NonRecursive = false
			}
		}
		if hc.IpcMode == "" {
			hc.IpcMode = container.IPCModeShareable // the default then
		}
	}
	o.CgroupnsHostDefault = versionLess(v, "1.41") // the default on cgroup v1 then
	if versionLess(v, "1.42") {
		hc.ConsoleSize = [2]uint{}
		for i := range hc.Mounts {
			m := &hc.Mounts[i]
			if m.BindOptions != nil {
				m.BindOptions.CreateMountpoint = false
			}
			// Not checked then: options of another type are dropped.
			if m.Type != mount.TypeVolume {
				m.VolumeOptions = nil
			}
			if m.Type != mount.TypeTmpfs {
				m.TmpfsOptions = nil
			}
		}
	} else {
		for _, m := range hc.Mounts {
			for _, k := range []struct {
				name string
				set  bool
				typ  mount.Type
			}{{"VolumeOptions", m.VolumeOptions != nil, mount.TypeVolume}, {"BindOptions", m.BindOptions != nil, mount.TypeBind}, {"TmpfsOptions", m.TmpfsOptions != nil, mount.TypeTmpfs}} {
				if k.set && m.Type != k.typ {
					return o, fmt.Errorf("%s must not be specified on mount type %q: %w", k.name, m.Type, errdefs.ErrInvalidArgument)
				}
			}
		}
	}
	if versionLess(v, "1.43") {
		hc.Annotations = nil
	}
	if versionLess(v, "1.44") {
		if cfg.Healthcheck != nil {
			cfg.Healthcheck.StartInterval = 0
		}
		o.ReadOnlyNonRecursive = true // read-only binds were so at the top only
		for _, m := range hc.Mounts {
			if m.BindOptions != nil && m.BindOptions.ReadOnlyForceRecursive {
				return o, fmt.Errorf("BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer: %w", errdefs.ErrInvalidArgument)
			}
		}
		if nc := req.NetworkingConfig; nc != nil && len(nc.EndpointsConfig) > 1 {
			names := slices.Sorted(func(yield func(string) bool) {
				for n := range nc.EndpointsConfig {
					if !yield(n) {
						return
					}
				}
			})
			return o, fmt.Errorf("Container cannot be created with multiple network endpoints: %s: %w", strings.Join(names, ", "), errdefs.ErrInvalidArgument)
		}
	}
	if versionLess(v, "1.45") {
		for _, m := range hc.Mounts {
			if m.VolumeOptions != nil && m.VolumeOptions.Subpath != "" {
				return o, fmt.Errorf("VolumeOptions.Subpath needs API v1.45 or newer: %w", errdefs.ErrInvalidArgument)
			}
		}
	}
	if versionLess(v, "1.48") {
		if nc := req.NetworkingConfig; nc != nil {
			for _, ep := range nc.EndpointsConfig {
				if ep != nil {
					ep.GwPriority = 0
				}
			}
		}
		for _, m := range hc.Mounts {
			if m.Type == mount.TypeImage {
				return o, fmt.Errorf(`Mount type "Image" needs API v1.48 or newer: %w`, errdefs.ErrInvalidArgument)
			}
		}
	}
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		hc.PidsLimit = nil // 0 and -1 (any negative, historically): unlimited
	}
	return o, nil
}

// updateCompat is createCompat for POST /containers/{id}/update.
func updateCompat(v string, u *container.UpdateConfig) {
	if versionLess(v, "1.40") {
		u.PidsLimit = nil
	}
	if u.PidsLimit != nil && *u.PidsLimit <= 0 {
		u.PidsLimit = new(int64) // unlimited
	}
}

// sinceVersion is the query parameter key of r if r's API version has it
// (it is at least since), else "": parameters older clients could not
// have meant.
func sinceVersion(r *http.Request, key, since string) string {
	if versionLess(apiVersion(r), since) {
		return ""
	}
	return r.URL.Query().Get(key)
}
