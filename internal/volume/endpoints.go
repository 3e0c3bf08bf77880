package volume

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/volume"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
)

// Endpoints answers the Engine API's volume endpoints over a Store
// (docker's local driver); Users names the containers that mount a
// volume (the engine's, from their mount points).
type Endpoints struct {
	Store *Store
	Users func(name string) []string
}

// VolumeCreate is POST /volumes/create.
func (e Endpoints) VolumeCreate(req volume.CreateRequest) (volume.Volume, error) {
	if req.Driver != "" && req.Driver != "local" {
		return volume.Volume{}, fmt.Errorf("error looking up volume plugin %s: plugin %q not found: %w", req.Driver, req.Driver, errdefs.ErrNotFound)
	}
	v, _, err := e.Store.Create(req.Name, req.Labels, req.DriverOpts)
	if err != nil {
		return volume.Volume{}, err
	}
	return e.Store.API(v), nil
}

// VolumeInspect is GET /volumes/{name}.
func (e Endpoints) VolumeInspect(name string) (volume.Volume, error) {
	v, err := e.Store.Get(name)
	if err != nil {
		return volume.Volume{}, err
	}
	return e.Store.API(v), nil
}

// VolumeList is GET /volumes, with the filters name, driver, label and
// dangling (not used by any container).
func (e Endpoints) VolumeList(f map[string][]string) (volume.ListResponse, error) {
	for k := range f {
		if !slices.Contains([]string{"name", "driver", "label", "dangling"}, k) {
			return volume.ListResponse{}, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	all, err := e.Store.List()
	if err != nil {
		return volume.ListResponse{}, err
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range all {
		if e.matches(v, f) {
			out.Volumes = append(out.Volumes, e.Store.API(v))
		}
	}
	return out, nil
}

func (e Endpoints) matches(v *Volume, f map[string][]string) bool {
	if names := f["name"]; len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(v.Name, n) }) {
		return false
	}
	if drivers := f["driver"]; len(drivers) > 0 && !slices.Contains(drivers, "local") {
		return false
	}
	if dl := f["dangling"]; len(dl) > 0 {
		dangling := len(e.Users(v.Name)) == 0
		if (dl[0] == "true" || dl[0] == "1") != dangling {
			return false
		}
	}
	return backend.AllLabels(v.Labels, f["label"])
}

// VolumeRemove is DELETE /volumes/{name}; force only forgives a missing
// volume, as docker's.
func (e Endpoints) VolumeRemove(name string, force bool) error {
	err := e.Store.Remove(name, e.Users)
	if force && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// VolumePrune removes unused volumes: anonymous ones, or named ones too
// with everything (the filter all=true of API 1.42 and later, as
// docker), narrowed by f.
func (e Endpoints) VolumePrune(everything bool, f backend.PruneFilter) (volume.PruneReport, error) {
	report := volume.PruneReport{VolumesDeleted: []string{}}
	all, err := e.Store.List()
	if err != nil {
		return report, err
	}
	for _, v := range all {
		if !everything && !v.Anonymous() || !f.Matches(v.CreatedAt, v.Labels) {
			continue
		}
		size := e.Store.Size(v.Name)
		if err := e.Store.Remove(v.Name, e.Users); err != nil {
			continue // in use
		}
		report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		report.SpaceReclaimed += uint64(size)
	}
	return report, nil
}
