package daemon

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/health"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/ps"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/vmtask"
	bolt "go.etcd.io/bbolt"
)

var containersBucket = []byte("containers") // ID -> record

// record is a container as stored in metadata.db.
type record struct {
	ID           string                `json:"id"`
	Name         string                `json:"name"` // without the leading "/"
	Created      time.Time             `json:"created"`
	Image        string                `json:"image"` // the image ID
	Config       *container.Config     `json:"config"`
	HostConfig   *container.HostConfig `json:"hostConfig"`
	Path         string                `json:"path"`
	Args         []string              `json:"args"`
	State        state                 `json:"state"`
	RestartCount int                   `json:"restartCount,omitempty"`
	// ManuallyStopped is set while stop or kill ends the container on
	// purpose, and kept until its next start: a restart policy leaves such
	// a container stopped (but "always" starts it with the daemon, as
	// docker's does).
	ManuallyStopped bool `json:"manuallyStopped,omitempty"`
	// MountPoints are its binds and volumes, decided at create.
	MountPoints []mounts.Point `json:"mountPoints,omitempty"`
	// Networks are the networks it is on, by name, with what it asked of
	// each (networks.go).
	Networks map[string]*netapi.EndpointSettings `json:"networks,omitempty"`
}

type state struct {
	Status    container.ContainerState `json:"status"`
	Pid       int                      `json:"pid,omitempty"`
	ExitCode  int                      `json:"exitCode"`
	Error     string                   `json:"error,omitempty"`
	OOMKilled bool                     `json:"oomKilled,omitempty"`
	// Health is the health check's state, for a container with one.
	Health     *container.Health `json:"health,omitempty"`
	StartedAt  time.Time         `json:"startedAt"`
	FinishedAt time.Time         `json:"finishedAt"`
}

// ps is what ps shows of the state.
func (s state) ps() ps.State {
	return ps.State{Status: s.Status, ExitCode: s.ExitCode, Health: s.Health, StartedAt: s.StartedAt, FinishedAt: s.FinishedAt}
}

// ctr is a container in memory. mu serializes its lifecycle operations.
type ctr struct {
	mu sync.Mutex
	record
	// exited is closed when the current (or next) run ends, then replaced.
	exited chan struct{}
	// removed is closed when the container is removed.
	removed chan struct{}
	// pending are attachments that wait for the container to start.
	pending []*pendingAttach
	// monitorGone is closed once the last run's monitor has finished
	// (monitor.Waiter): a new run, or the removal of the container's
	// directories, waits for it.
	monitorGone <-chan struct{}
	// task is the current (or last) run, nil before the first one.
	task task.Task
}

// closedChan is a channel that never blocks.
var closedChan = func() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}()

func newCtr(r record) *ctr {
	return &ctr{record: r, exited: make(chan struct{}), removed: make(chan struct{}), monitorGone: closedChan}
}

func (c *ctr) running() bool {
	return c.State.Status == container.StateRunning || c.State.Status == container.StatePaused
}

func (d *Daemon) snapshotKey(id string) string { return "container-" + id }
func (d *Daemon) exitFile(id string) string    { return filepath.Join(d.dataDir(id), "exit.json") }

// logOptions is how c's output is logged (checked at create): where, in
// which format, how it rotates; no Path for the none driver. The files
// are where dockerd keeps them.
func (d *Daemon) logOptions(c *ctr) logfile.Options {
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
func (d *Daemon) jsonLogPath(c *ctr) string {
	if o := d.logOptions(c); o.Format == logfile.JSONFile {
		return o.Path
	}
	return ""
}

// deleteRecord removes a container's record.
func (d *Daemon) deleteRecord(id string) error {
	return d.db.Update(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(containersBucket); bk != nil {
			return bk.Delete([]byte(id))
		}
		return nil
	})
}

// save writes the record; callers hold c.mu (or own c exclusively).
func (d *Daemon) save(c *ctr) error {
	return <-d.saveAsync(c)
}

// saveAsync takes a copy of c's record now and writes it in the
// background; the channel gives the result.
func (d *Daemon) saveAsync(c *ctr) <-chan error {
	done := make(chan error, 1)
	b, err := json.Marshal(c.record)
	if err != nil {
		done <- err
		return done
	}
	go func() {
		done <- d.db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(containersBucket)
			if err != nil {
				return err
			}
			return bk.Put([]byte(c.ID), b)
		})
	}()
	return done
}

// get finds a container by full ID, name or unique ID prefix.
func (d *Daemon) get(ref string) (*ctr, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if c, ok := d.containers[ref]; ok {
		return c, nil
	}
	if id, ok := d.names[strings.TrimPrefix(ref, "/")]; ok {
		return d.containers[id], nil
	}
	var found *ctr
	if ref != "" {
		for id, c := range d.containers {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", ref, errdefs.ErrInvalidArgument)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}

// getRunning finds a running (or paused) container and returns it with
// c.mu held; the caller unlocks it.
func (d *Daemon) getRunning(ref string) (*ctr, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if !c.running() {
		c.mu.Unlock()
		return nil, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	return c, nil
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// reserveName claims name for id, or generates one when name is empty.
// Callers hold d.mu.
func (d *Daemon) reserveName(name, id string) (string, error) {
	if name == "" {
		for i := 0; ; i++ {
			name = randomName(i)
			if _, taken := d.names[name]; !taken {
				break
			}
		}
	} else {
		if !validName.MatchString(name) {
			return "", fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
		}
		name = strings.TrimPrefix(name, "/")
		if other, taken := d.names[name]; taken {
			return "", fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", name, other, errdefs.ErrConflict)
		}
	}
	d.names[name] = id
	return name, nil
}

// Create makes a container from an image, as POST /containers/create;
// platform (os[/arch[/variant]], optional) must be the image's.
func (d *Daemon) Create(o backend.CreateOpts, cfg *container.Config, hc *container.HostConfig, nc *netapi.NetworkingConfig) (container.CreateResponse, error) {
	name, platform := o.Name, o.Platform
	var resp container.CreateResponse
	if cfg == nil {
		return resp, fmt.Errorf("config cannot be empty in order to create a container: %w", errdefs.ErrInvalidArgument)
	}
	if hc == nil {
		hc = &container.HostConfig{}
	}
	if err := d.selectRuntime(hc); err != nil {
		return resp, err
	}
	hc.LogConfig.Type, hc.LogConfig.Config = logfile.Merge(hc.LogConfig.Type, hc.LogConfig.Config, d.cfg.LogDriver, d.cfg.LogOpts)
	if err := validateHostConfig(hc); err != nil {
		return resp, err
	}
	if d.useInit(hc) && d.cfg.InitPath == "" {
		return resp, fmt.Errorf("--init: no init binary (install tini, or set the daemon's --init-path): %w", errdefs.ErrInvalidArgument)
	}
	d.Service.Mu.Lock()
	defer d.Service.Mu.Unlock()
	img, err := d.images.Get(cfg.Image)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return resp, fmt.Errorf("No such image: %s: %w", cfg.Image, errdefs.ErrNotFound)
		}
		return resp, err
	}
	dcfg, err := d.images.DockerConfig(img.ID)
	if err != nil {
		return resp, err
	}
	icfg := &dcfg.Image
	icfg.Config = dcfg.Config.ImageConfig
	if err := matchPlatform(cfg.Image, platform, icfg); err != nil {
		return resp, err
	}
	merged := spec.MergeConfig(cfg, icfg)
	merged.Healthcheck = health.Merge(cfg.Healthcheck, dcfg.Config.Healthcheck)
	if len(merged.Shell) == 0 {
		merged.Shell = dcfg.Config.Shell
	}
	path, args := merged.Entrypoint, merged.Cmd
	cmd := append(append([]string(nil), path...), args...)
	if len(cmd) == 0 {
		return resp, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	if hc.Runtime == vmtask.Name {
		if err := spec.ValidateVM(merged, hc); err != nil {
			return resp, err
		}
	}
	spec.HostConfigDefaults(hc, o.CgroupnsHostDefault, hc.Runtime == vmtask.Name)
	mps, err := mounts.Parse(merged, hc, o.ReadOnlyNonRecursive)
	if err != nil {
		return resp, err
	}
	nets, warnings, err := d.CheckCreate(merged, hc, nc, func(ref string) error { _, err := d.get(ref); return err })
	warnings = append(warnings, spec.DiscardUnsupported(hc)...)
	if err != nil {
		return resp, err
	}
	id := stringid.New()
	if merged.Hostname == "" && !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer() && !hc.UTSMode.IsHost() {
		merged.Hostname = id[:12] // as dockerd records it
	}
	d.mu.Lock()
	name, err = d.reserveName(name, id)
	d.mu.Unlock()
	if err != nil {
		return resp, err
	}
	release := func() {
		d.mu.Lock()
		delete(d.names, name)
		d.mu.Unlock()
	}
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
		c     *ctr
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
		c = newCtr(record{ID: id, Name: name, Created: time.Now().UTC(), Image: img.ID.String(),
			Config: merged, HostConfig: hc, Path: cmd[0], Args: cmd[1:], State: state{Status: container.StateCreated},
			MountPoints: mps, Networks: nets})
		saved = d.saveAsync(c)
	}
	perr := <-prepared
	if saved != nil {
		if serr := <-saved; serr != nil {
			err = serr
		} else if perr != nil {
			d.deleteRecord(id)
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
	d.mu.Lock()
	d.containers[id] = c
	d.mu.Unlock()
	d.vols.Unlock()
	d.containerEvent(c, events.ActionCreate, nil)
	return container.CreateResponse{ID: id, Warnings: warnings}, nil
}

// all returns every container, newest first.
func (d *Daemon) all() []*ctr {
	d.mu.Lock()
	out := make([]*ctr, 0, len(d.containers))
	for _, c := range d.containers {
		out = append(out, c)
	}
	d.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

func (d *Daemon) containerEvent(c *ctr, action events.Action, extra map[string]string) {
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
	for _, c := range ci.d.all() {
		users[c.Image]++
	}
	return users
}

func (ci containerImages) ImageUser(id digest.Digest) (string, bool) {
	for _, c := range ci.d.all() {
		if c.Image == id.String() {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.ID, c.running()
		}
	}
	return "", false
}
