package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/task/vmtask"
)

func (d *Daemon) snapshotKey(id string) string { return "container-" + id }
func (d *Daemon) exitFile(id string) string    { return filepath.Join(d.dataDir(id), "exit.json") }

// logOptions is how c's output is logged (checked at create): where, in
// which format, how it rotates; no Path for the none driver. The files
// are where dockerd keeps them.
func (d *Daemon) logOptions(c *containers.Container) logfile.Options {
	o, _ := logfile.Configure(c.HostConfig.LogConfig.Type, c.HostConfig.LogConfig.Config)
	switch o.Format {
	case logfile.JSONFile:
		o.Path = filepath.Join(d.dataDir(c.ID), c.ID+"-json.log")
	case logfile.Local:
		o.Path = filepath.Join(d.dataDir(c.ID), "local-logs", "container.log")
	}
	return o
}

// logDriver is the daemon's default log driver.
func (d *Daemon) logDriver() string {
	if d.cfg.LogDriver == "" {
		return logfile.DriverJSONFile
	}
	return d.cfg.LogDriver
}

// jsonLogPath is inspect's LogPath: the json-file driver's file, as
// dockerd shows no other.
func (d *Daemon) jsonLogPath(c *containers.Container) string {
	if o := d.logOptions(c); o.Format == logfile.JSONFile {
		return o.Path
	}
	return ""
}

// Create makes a container from an image, as POST /containers/create;
// platform (os[/arch[/variant]], optional) must be the image's.
func (d *Daemon) Create(o backend.CreateOpts, cfg *container.Config, hc *container.HostConfig, nc *netapi.NetworkingConfig) (container.CreateResponse, error) {
	name := o.Name
	var resp container.CreateResponse
	if cfg == nil {
		return resp, fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument)
	}
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := d.runtimes.Select(hc); err != nil {
		return resp, err
	}
	hc.LogConfig.Type, hc.LogConfig.Config = logfile.Merge(hc.LogConfig.Type, hc.LogConfig.Config, d.cfg.LogDriver, d.cfg.LogOpts)
	if err := validateHostConfig(hc); err != nil {
		return resp, err
	}
	if d.specs.UseInit(hc) && d.cfg.InitPath == "" {
		return resp, fmt.Errorf("--init: no init binary (install tini, or set the daemon's --init-path): %w", errdefs.ErrInvalidArgument)
	}
	d.Service.Mu.Lock()
	defer d.Service.Mu.Unlock()
	img, merged, err := d.RunConfig(cfg, o.Platform)
	if err != nil {
		return resp, err
	}
	path, args := merged.Entrypoint, merged.Cmd
	cmd := append(append([]string(nil), path...), args...)
	if len(cmd) == 0 {
		return resp, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	if hc.Runtime == vmtask.Name {
		conf, err := d.images.DockerConfig(img.ID)
		if err != nil {
			return resp, err
		}
		if err := spec.ValidateVM(merged, hc, conf.Architecture); err != nil {
			return resp, err
		}
	}
	spec.HostConfigDefaults(hc, o.CgroupnsHostDefault, hc.Runtime == vmtask.Name)
	mps, err := mounts.Parse(merged, hc, o.ReadOnlyNonRecursive)
	if err != nil {
		return resp, err
	}
	nets, warnings, err := d.CheckCreate(merged, hc, nc, func(ref string) error { _, err := d.ctrs.Get(ref); return err })
	warnings = append(warnings, spec.DiscardUnsupported(hc)...)
	if err != nil {
		return resp, err
	}
	id := stringid.New()
	if merged.Hostname == "" && !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer() && !hc.UTSMode.IsHost() {
		merged.Hostname = id[:12] // as dockerd records it
	}
	if name, err = d.ctrs.ReserveName(name, id); err != nil {
		return resp, err
	}
	release := func() { d.ctrs.ReleaseName(name) }
	parent, err := d.images.RootFS(img)
	if err != nil {
		release()
		return resp, err
	}
	// The writable layer and the record are written in parallel (two
	// databases: their syncs overlap); restore drops a record whose layer
	// a crash kept from being made.
	key := d.snapshotKey(id)
	prepared := make(chan error, 1)
	go func() {
		_, err := d.snap.Prepare(key, parent)
		prepared <- err
	}()
	var (
		made  []string
		c     *containers.Container
		saved <-chan error
	)
	err = os.MkdirAll(d.dataDir(id), 0o710)
	// Volumes are made and the container registered under the volume store's lock, so that
	// no removal sees a volume unused in between.
	d.vols.Lock()
	if err == nil {
		made, err = mounts.SetUp(d.vols, mps)
	}
	if err == nil {
		c = containers.New(containers.Record{ID: id, Name: name, Created: time.Now().UTC(), Image: img.ID.String(),
			Config: merged, HostConfig: hc, Path: cmd[0], Args: cmd[1:], State: containers.State{Status: container.StateCreated},
			MountPoints: mps, Networks: nets})
		saved = d.ctrs.SaveAsync(c)
	}
	perr := <-prepared
	if saved != nil {
		if serr := <-saved; serr != nil {
			err = serr
		} else if perr != nil {
			d.ctrs.DeleteRecord(id)
		}
	}
	if err == nil {
		err = perr
	}
	if err != nil {
		d.vols.Unlock()
		d.removeVolumes(made)
		if perr == nil {
			d.snap.Remove(key)
		}
		os.RemoveAll(d.dataDir(id))
		release()
		return resp, err
	}
	d.ctrs.Add(c)
	d.vols.Unlock()
	d.containerEvent(c, events.ActionCreate, nil)
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

func (d *Daemon) containerEvent(c *containers.Container, action events.Action, extra map[string]string) {
	attrs := map[string]string{"name": c.Name, "image": c.Config.Image}
	for k, v := range c.Config.Labels {
		attrs[k] = v
	}
	for k, v := range extra {
		attrs[k] = v
	}
	d.event(events.ContainerEventType, action, c.ID, attrs)
}

// containerImages answers the image service for the containers.
type containerImages struct{ d *Daemon }

func (ci containerImages) ImageUsers() map[string]int64 {
	users := map[string]int64{}
	for _, c := range ci.d.ctrs.All() {
		users[c.Image]++
	}
	return users
}

func (ci containerImages) ImageUser(id digest.Digest) (string, bool) {
	for _, c := range ci.d.ctrs.All() {
		if c.Image == id.String() {
			c.Mu.Lock()
			defer c.Mu.Unlock()
			return c.ID, c.Running()
		}
	}
	return "", false
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
