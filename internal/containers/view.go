package containers

import (
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/ps"
)

// Engine is what the engine knows of a container beyond its record, for
// inspect and ps; c.Mu is held when a method is called with c.
type Engine interface {
	// Driver is the storage driver's name, GraphDriver c's layers.
	Driver() string
	GraphDriver(c *Container) *storage.DriverData
	// FilesDir holds c's hosts, hostname and resolv.conf.
	FilesDir(c *Container) string
	// LogPath is the json-file driver's file ("" for other drivers).
	LogPath(c *Container) string
	Mounts(c *Container) []container.MountPoint
	NetworkSettings(c *Container) *container.NetworkSettings
	// Sizes are the bytes of c's writable layer, and those with its
	// image's layers (c.Mu need not be held).
	Sizes(c *Container) (rw, rootfs int64)
	// ImageID is the ID of image ref, "" if there is none.
	ImageID(ref string) string
	// DefaultRuntime names the runtime of a record that names none.
	DefaultRuntime() string
}

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.Format(time.RFC3339Nano)
}

// Inspect describes a container, as GET /containers/{id}/json; with size,
// its writable layer's and whole root file system's sizes too.
func (s *Store) Inspect(ref string, size bool, e Engine) (*container.InspectResponse, error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	st := c.State
	cfg := *c.Config
	hc := *c.HostConfig
	if hc.NetworkMode == "" {
		hc.NetworkMode = "default"
	}
	if hc.LogConfig.Type == "" { // a record from before it was set at create
		hc.LogConfig.Type = logfile.DriverJSONFile
	}
	if hc.Runtime == "" {
		hc.Runtime = e.DefaultRuntime()
	}
	files := e.FilesDir(c)
	r := &container.InspectResponse{
		ID: c.ID, Created: timeString(c.Created), Path: c.Path, Args: c.Args,
		State: &container.State{
			Status: st.Status, Running: c.Running(), Paused: st.Status == container.StatePaused,
			Dead: st.Status == container.StateDead, OOMKilled: st.OOMKilled, Pid: st.Pid, ExitCode: st.ExitCode,
			Error: st.Error, StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt),
			Health: st.Health,
		},
		Image:           c.Image,
		ResolvConfPath:  files + "/resolv.conf",
		HostnamePath:    files + "/hostname",
		HostsPath:       files + "/hosts",
		LogPath:         e.LogPath(c),
		Name:            "/" + c.Name,
		RestartCount:    c.RestartCount,
		Driver:          e.Driver(),
		Platform:        "linux",
		HostConfig:      &hc,
		GraphDriver:     e.GraphDriver(c),
		Mounts:          e.Mounts(c),
		Config:          &cfg,
		NetworkSettings: e.NetworkSettings(c),
	}
	if size {
		rw, rootfs := e.Sizes(c)
		r.SizeRw, r.SizeRootFs = &rw, &rootfs
	}
	return r, nil
}

// List returns containers, newest first, as GET /containers/json.
func (s *Store) List(o backend.ListOpts, e Engine) ([]container.Summary, error) {
	if err := ps.CheckFilters(o.Filters); err != nil {
		return nil, err
	}
	all := s.All()
	var before, since time.Time
	if v := o.Filters["before"]; len(v) > 0 {
		c, err := s.Get(v[0])
		if err != nil {
			return nil, err
		}
		before = c.Created
	}
	if v := o.Filters["since"]; len(v) > 0 {
		c, err := s.Get(v[0])
		if err != nil {
			return nil, err
		}
		since = c.Created
	}
	out := []container.Summary{}
	for _, c := range all {
		c.Mu.Lock()
		sum, keep := summary(c, e), true
		if !o.All && !c.Running() && len(o.Filters["status"]) == 0 && len(o.Filters["exited"]) == 0 {
			keep = false
		}
		if !before.IsZero() && !c.Created.Before(before) || !since.IsZero() && !c.Created.After(since) {
			keep = false
		}
		if keep && !ps.Matches(sum, c.State.PS(), c.Config.Labels, o.Filters, e.ImageID) {
			keep = false
		}
		c.Mu.Unlock()
		if keep {
			if o.Size { // outside c.Mu: it reads the layer's files
				sum.SizeRw, sum.SizeRootFs = e.Sizes(c)
			}
			out = append(out, sum)
			if o.Limit > 0 && len(out) == o.Limit {
				break
			}
		}
	}
	return out, nil
}

// summary is the `ps` line of c; c.Mu is held.
func summary(c *Container, e Engine) container.Summary {
	s := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, ImageID: c.Image,
		Command: ps.Command(c.Path, c.Args), Created: c.Created.Unix(),
		Ports: []container.PortSummary{}, Labels: c.Config.Labels, State: c.State.Status,
		Mounts: e.Mounts(c),
	}
	if s.Image == "" {
		s.Image = c.Image
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	s.HostConfig.Annotations = c.HostConfig.Annotations
	if s.HostConfig.NetworkMode == "" {
		s.HostConfig.NetworkMode = "default"
	}
	s.Status = ps.Status(c.State.PS())
	ns := e.NetworkSettings(c)
	s.NetworkSettings = &container.NetworkSettingsSummary{Networks: ns.Networks}
	s.Ports = ps.Ports(ns.Ports)
	return s
}
