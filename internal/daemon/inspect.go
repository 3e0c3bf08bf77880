package daemon

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/ps"
)

func timeString(t time.Time) string {
	if t.IsZero() {
		return "0001-01-01T00:00:00Z"
	}
	return t.Format(time.RFC3339Nano)
}

// Inspect describes a container, as GET /containers/{id}/json; with size,
// its writable layer's and whole root file system's sizes too.
func (d *Daemon) Inspect(ref string, size bool) (*container.InspectResponse, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
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
		hc.Runtime = ownRuntime
	}
	r := &container.InspectResponse{
		ID: c.ID, Created: timeString(c.Created), Path: c.Path, Args: c.Args,
		State: &container.State{
			Status: st.Status, Running: c.running(), Paused: st.Status == container.StatePaused,
			Dead: st.Status == container.StateDead, OOMKilled: st.OOMKilled, Pid: st.Pid, ExitCode: st.ExitCode,
			Error: st.Error, StartedAt: timeString(st.StartedAt), FinishedAt: timeString(st.FinishedAt),
			Health: st.Health,
		},
		Image:           c.Image,
		ResolvConfPath:  d.dataDir(c.ID) + "/resolv.conf",
		HostnamePath:    d.dataDir(c.ID) + "/hostname",
		HostsPath:       d.dataDir(c.ID) + "/hosts",
		LogPath:         d.jsonLogPath(c),
		Name:            "/" + c.Name,
		RestartCount:    c.RestartCount,
		Driver:          d.driver,
		Platform:        "linux",
		HostConfig:      &hc,
		GraphDriver:     d.graphDriver(c),
		Mounts:          mounts.API(d.vols, c.mounts()),
		Config:          &cfg,
		NetworkSettings: d.networkSettings(c),
		ExecIDs:         nil,
	}
	if size {
		rw, rootfs := d.containerSizes(c)
		r.SizeRw, r.SizeRootFs = &rw, &rootfs
	}
	return r, nil
}

// graphDriver describes c's root file system as dockerd's overlay2 does:
// its layers' directories (lower, upper, work) and where it is mounted.
func (d *Daemon) graphDriver(c *ctr) *storage.DriverData {
	data := map[string]string{"MergedDir": filepath.Join(d.execDir(c.ID), "rootfs")} // where the process backend mounts it
	if ms, err := d.snap.Mounts(d.snapshotKey(c.ID)); err == nil && len(ms) == 1 && ms[0].Type == "overlay" {
		for _, o := range ms[0].Options {
			for opt, key := range map[string]string{"lowerdir=": "LowerDir", "upperdir=": "UpperDir", "workdir=": "WorkDir"} {
				if v, ok := strings.CutPrefix(o, opt); ok {
					data[key] = v
				}
			}
		}
	}
	return &storage.DriverData{Name: d.driver, Data: data}
}

// List returns containers, newest first, as GET /containers/json.
func (d *Daemon) List(o backend.ListOpts) ([]container.Summary, error) {
	if err := ps.CheckFilters(o.Filters); err != nil {
		return nil, err
	}
	all := d.all()
	var before, since time.Time
	if v := o.Filters["before"]; len(v) > 0 {
		c, err := d.get(v[0])
		if err != nil {
			return nil, err
		}
		before = c.Created
	}
	if v := o.Filters["since"]; len(v) > 0 {
		c, err := d.get(v[0])
		if err != nil {
			return nil, err
		}
		since = c.Created
	}
	out := []container.Summary{}
	for _, c := range all {
		c.mu.Lock()
		s, keep := d.summary(c), true
		c.mu.Unlock()
		if !o.All && !c.running() && len(o.Filters["status"]) == 0 && len(o.Filters["exited"]) == 0 {
			keep = false
		}
		if !before.IsZero() && !c.Created.Before(before) || !since.IsZero() && !c.Created.After(since) {
			keep = false
		}
		if keep && !ps.Matches(s, c.State.ps(), c.Config.Labels, o.Filters, d.imageID) {
			keep = false
		}
		if keep {
			if o.Size {
				s.SizeRw, s.SizeRootFs = d.containerSizes(c)
			}
			out = append(out, s)
			if o.Limit > 0 && len(out) == o.Limit {
				break
			}
		}
	}
	return out, nil
}

// imageID is the ID of image ref, "" if there is none.
func (d *Daemon) imageID(ref string) string {
	img, err := d.images.Get(ref)
	if err != nil {
		return ""
	}
	return img.ID.String()
}

// summary is the `ps` line of c; c.mu is held.
func (d *Daemon) summary(c *ctr) container.Summary {
	s := container.Summary{
		ID: c.ID, Names: []string{"/" + c.Name}, Image: c.Config.Image, ImageID: c.Image,
		Command: ps.Command(c.Path, c.Args), Created: c.Created.Unix(),
		Ports: []container.PortSummary{}, Labels: c.Config.Labels, State: c.State.Status,
		Mounts: mounts.API(d.vols, c.mounts()),
	}
	if s.Image == "" {
		s.Image = c.Image
	}
	s.HostConfig.NetworkMode = string(c.HostConfig.NetworkMode)
	s.HostConfig.Annotations = c.HostConfig.Annotations
	if s.HostConfig.NetworkMode == "" {
		s.HostConfig.NetworkMode = "default"
	}
	s.Status = ps.Status(c.State.ps())
	ns := d.networkSettings(c)
	s.NetworkSettings = &container.NetworkSettingsSummary{Networks: ns.Networks}
	s.Ports = ps.Ports(ns.Ports)
	return s
}

// containerSizes are the bytes of c's writable layer, and those with its
// image's layers (as stored).
func (d *Daemon) containerSizes(c *ctr) (rw, rootfs int64) {
	rw, _ = d.snap.Usage(d.snapshotKey(c.ID))
	rootfs = rw
	if img, err := d.images.Get(c.Image); err == nil {
		rootfs += d.Size(img)
	}
	return rw, rootfs
}
