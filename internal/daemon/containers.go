package daemon

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"context"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/oci"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/spec"
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
	MountPoints []mountPoint `json:"mountPoints,omitempty"`
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
func (d *Daemon) logPath(id string) string     { return filepath.Join(d.dataDir(id), id+"-json.log") }

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

func newID() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
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
	if err := validateHostConfig(hc); err != nil {
		return resp, err
	}
	if hc.LogConfig.Type == "" {
		hc.LogConfig.Type = jsonFileDriver
	}
	if d.useInit(hc) && d.cfg.InitPath == "" {
		return resp, fmt.Errorf("--init: no init binary (install tini, or set the daemon's --init-path): %w", errdefs.ErrInvalidArgument)
	}
	d.imageMu.Lock()
	defer d.imageMu.Unlock()
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
	merged := mergeConfig(cfg, icfg)
	merged.Healthcheck = mergeHealthcheck(cfg.Healthcheck, dcfg.Config.Healthcheck)
	if len(merged.Shell) == 0 {
		merged.Shell = dcfg.Config.Shell
	}
	path, args := merged.Entrypoint, merged.Cmd
	cmd := append(append([]string(nil), path...), args...)
	if len(cmd) == 0 {
		return resp, fmt.Errorf("no command specified: %w", errdefs.ErrInvalidArgument)
	}
	if hc.Runtime == vmtask.Name {
		if err := validateVM(merged, hc); err != nil {
			return resp, err
		}
	}
	hostConfigDefaults(hc)
	mps, err := parseMountPoints(merged, hc, o.ReadOnlyNonRecursive)
	if err != nil {
		return resp, err
	}
	nets, warnings, err := d.createNetworks(merged, hc, nc)
	warnings = append(warnings, discardUnsupported(hc)...)
	if err != nil {
		return resp, err
	}
	id := newID()
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
		made, err = d.setUpVolumes(mps)
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

// validateHostConfig refuses what the engine cannot do yet, rather than
// accepting and ignoring it.
func validateHostConfig(hc *container.HostConfig) error {
	if err := validateLogConfig(hc.LogConfig); err != nil {
		return err
	}
	if _, err := spec.ParseSecurityOpts(hc.SecurityOpt); err != nil {
		return err
	}
	if hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled && hc.AutoRemove {
		return fmt.Errorf("conflicting options: cannot specify both --restart and --rm: %w", errdefs.ErrInvalidArgument)
	}
	if hc.Memory < 0 || hc.NanoCPUs < 0 {
		return fmt.Errorf("resource limits cannot be negative: %w", errdefs.ErrInvalidArgument)
	}
	for _, m := range []struct{ what, mode string }{{"PID", string(hc.PidMode)}, {"IPC", string(hc.IpcMode)}, {"UTS", string(hc.UTSMode)}} {
		other, isContainer := strings.CutPrefix(m.mode, "container:")
		ok := m.mode == "" || m.mode == "host" || isContainer && other != "" && m.what != "UTS" ||
			m.what == "IPC" && (m.mode == "private" || m.mode == "shareable" || m.mode == "none")
		if !ok {
			return fmt.Errorf("invalid %s mode: %s: %w", m.what, m.mode, errdefs.ErrInvalidArgument)
		}
	}
	if hc.Memory > 0 && hc.Memory < 6*1024*1024 {
		return fmt.Errorf("Minimum memory limit allowed is 6MB: %w", errdefs.ErrInvalidArgument)
	}
	return validateResources(hc)
}

// validateResources checks the limits spec.Build applies and refuses the
// ones the engine has no way to honour on Linux; the wording is dockerd's
// where it has one.
func validateResources(hc *container.HostConfig) error {
	if s := hc.MemorySwappiness; s != nil && (*s < -1 || *s > 100) {
		return fmt.Errorf("Invalid value: %v, valid memory swappiness range is 0-100: %w", *s, errdefs.ErrInvalidArgument)
	}
	if hc.CPURealtimePeriod < 0 || hc.CPURealtimeRuntime < 0 {
		return fmt.Errorf("real-time CPU limits cannot be negative: %w", errdefs.ErrInvalidArgument)
	}
	if hc.CPURealtimePeriod > 0 && hc.CPURealtimeRuntime > hc.CPURealtimePeriod {
		return fmt.Errorf("cpu real-time runtime cannot be higher than cpu real-time period: %w", errdefs.ErrInvalidArgument)
	}
	if hc.CPUCount != 0 || hc.CPUPercent != 0 || hc.IOMaximumIOps != 0 || hc.IOMaximumBandwidth != 0 {
		return fmt.Errorf("CPU count, CPU percent and IO maximums are options of Windows containers, not of Linux: %w", errdefs.ErrInvalidArgument)
	}
	for _, r := range hc.DeviceRequests {
		return fmt.Errorf("could not select device driver %q with capabilities: %v: %w", r.Driver, r.Capabilities, errdefs.ErrInvalidArgument)
	}
	if err := spec.ValidateDevices(hc); err != nil {
		return err
	}
	switch {
	case hc.CgroupnsMode != "" && !hc.CgroupnsMode.IsHost() && !hc.CgroupnsMode.IsPrivate():
		return fmt.Errorf("invalid cgroup namespace mode: %v: %w", hc.CgroupnsMode, errdefs.ErrInvalidArgument)
	case hc.Cgroup != "":
		return fmt.Errorf("--cgroup %s: joining another container's cgroup is not supported: %w", hc.Cgroup, errdefs.ErrNotImplemented)
	case hc.UsernsMode != "" && !hc.UsernsMode.IsHost():
		return fmt.Errorf("invalid user namespace mode: %s (the engine has no user namespace remapping): %w", hc.UsernsMode, errdefs.ErrInvalidArgument)
	case len(hc.StorageOpt) > 0:
		return fmt.Errorf("--storage-opt is supported only for overlay over xfs with 'pquota' mount option: %w", errdefs.ErrInvalidArgument)
	case hc.VolumeDriver != "" && hc.VolumeDriver != "local":
		return fmt.Errorf("volume driver %q is not supported: %w", hc.VolumeDriver, errdefs.ErrNotImplemented)
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
		hc.Runtime = defaultRuntime
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

// imageEnv is the container's environment as dockerd records it: the
// user's variables, then the image's that the user did not set.
func imageEnv(user, image []string) []string {
	if len(user) == 0 {
		return slices.Clone(image)
	}
	out := slices.Clone(user)
	for _, kv := range image {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(user, func(u string) bool { uk, _, _ := strings.Cut(u, "="); return uk == k }) {
			out = append(out, kv)
		}
	}
	return out
}

// discardUnsupported drops the limits this host's kernel cannot apply,
// with dockerd's warnings (a container must still start where a weight
// is only a preference).
func discardUnsupported(hc *container.HostConfig) []string {
	var warnings []string
	if (hc.BlkioWeight > 0 || len(hc.BlkioWeightDevice) > 0) && !cgroups.BlkioWeightSupported() {
		if hc.BlkioWeight > 0 {
			warnings = append(warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		}
		if len(hc.BlkioWeightDevice) > 0 {
			warnings = append(warnings, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		}
		hc.BlkioWeight, hc.BlkioWeightDevice = 0, nil
	}
	return warnings
}

// defaultShmSize is /dev/shm's size unless --shm-size says otherwise.
const defaultShmSize = 64 << 20

// hostConfigDefaults records what a container gets for the settings left
// unset, as dockerd does at create, so that inspect shows what it runs
// with: the log options, the IPC and cgroup namespace modes, /dev/shm's
// size, the swap limit (as much swap as memory), the masked and read-only
// paths. A VM container's guest applies none of the last three.
func hostConfigDefaults(hc *container.HostConfig) {
	if hc.LogConfig.Config == nil {
		hc.LogConfig.Config = map[string]string{}
	}
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = container.CgroupnsModePrivate // tent's default on cgroup v1 too (docker's there: host)
	}
	if hc.OomKillDisable == nil {
		hc.OomKillDisable = new(bool)
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		hc.MemorySwap = 2 * hc.Memory
	}
	if hc.Runtime == vmtask.Name {
		return
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = defaultShmSize
	}
	if !hc.Privileged {
		if hc.MaskedPaths == nil {
			hc.MaskedPaths = slices.Clone(oci.DefaultMaskedPaths)
		}
		if hc.ReadonlyPaths == nil {
			hc.ReadonlyPaths = slices.Clone(oci.DefaultReadonlyPaths)
		}
	}
}

// validateVM refuses what a VM container cannot have yet (docs/vm.md),
// rather than taking it and leaving it out.
func validateVM(cfg *container.Config, hc *container.HostConfig) error {
	no := func(what string) error {
		return fmt.Errorf("%s: not supported for VM containers (--isolation vm) yet: %w", what, errdefs.ErrNotImplemented)
	}
	switch {
	case hc.NetworkMode.IsHost() || hc.NetworkMode.IsContainer():
		return no("--network host and container: (a VM has its own network stack)")
	// --privileged is taken: in its guest a VM's workload has every
	// capability and device, no filter and no masked path, privileged
	// or not (the guest's kernel is the wall); the host's devices are
	// not the guest's.
	case len(hc.Devices) > 0 || len(hc.DeviceCgroupRules) > 0:
		return no("devices")
	case hc.PidMode != "" || hc.UTSMode != "" || hc.IpcMode != "" && hc.IpcMode != "private" && hc.IpcMode != "shareable" || hc.CgroupnsMode.IsHost():
		return no("sharing namespaces (--pid, --ipc, --uts, --cgroupns)")
	// What the agent does not apply in the guest: the workload runs there
	// as a root with every capability, no seccomp filter or LSM profile.
	case len(hc.CapAdd) > 0 || len(hc.CapDrop) > 0:
		return no("--cap-add and --cap-drop")
	case len(hc.Sysctls) > 0 || hc.OomScoreAdj != 0 || hc.ShmSize > 0 || cfg.Domainname != "" || hc.MaskedPaths != nil || hc.ReadonlyPaths != nil:
		return no("--sysctl, --oom-score-adj, --shm-size, --domainname, masked and read-only paths")
	}
	sec, err := spec.ParseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	if sec.NoNewPrivileges || sec.Seccomp != "" && sec.Seccomp != "unconfined" || sec.AppArmor != "" && sec.AppArmor != "unconfined" {
		return no("--security-opt no-new-privileges, seccomp and apparmor profiles")
	}
	return nil
}

// mergeConfig fills what the user left out of cfg from the image, as
// docker does: the image's Cmd only when the user gave neither Cmd nor
// Entrypoint, the image's Env under the user's, and so on.
func mergeConfig(cfg *container.Config, img *ocispec.Image) *container.Config {
	m := *cfg
	ic := img.Config
	if len(m.Entrypoint) == 0 {
		m.Entrypoint = ic.Entrypoint
		if len(m.Cmd) == 0 {
			m.Cmd = ic.Cmd
		}
	} else if len(m.Entrypoint) == 1 && m.Entrypoint[0] == "" {
		m.Entrypoint = nil // --entrypoint "" clears the image's
	}
	m.Env = imageEnv(cfg.Env, ic.Env)
	for p := range ic.ExposedPorts {
		port, err := netapi.ParsePort(p)
		if err != nil {
			continue // not a port: the image's mistake, which docker skips too
		}
		if m.ExposedPorts == nil {
			m.ExposedPorts = netapi.PortSet{}
		}
		m.ExposedPorts[port] = struct{}{}
	}
	if m.WorkingDir == "" {
		m.WorkingDir = ic.WorkingDir
	}
	if m.User == "" {
		m.User = ic.User
	}
	if m.StopSignal == "" {
		m.StopSignal = ic.StopSignal
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		m.Labels = labels
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	if len(ic.Volumes) > 0 { // the image's and the user's, as docker
		vols := map[string]struct{}{}
		for k := range ic.Volumes {
			vols[k] = struct{}{}
		}
		for k := range cfg.Volumes {
			vols[k] = struct{}{}
		}
		m.Volumes = vols
	}
	return &m
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

// restore loads the containers of metadata.db and re-adopts the running
// ones: each is watched through its monitor, which may have recorded an
// exit while no daemon was there.
func (d *Daemon) restore() (boot []string, err error) {
	var recs []record
	err = d.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(containersBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var r record
			if err := json.Unmarshal(v, &r); err != nil {
				d.log.Error("unreadable container record", "id", string(k), "err", err)
				return nil
			}
			recs = append(recs, r)
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.State.Status == container.StateCreated {
			if _, err := d.snap.Stat(d.snapshotKey(r.ID)); errdefs.IsNotFound(err) {
				// A create that a crash interrupted (its layer is made
				// in parallel with the record): undone.
				d.deleteRecord(r.ID)
				continue
			}
		}
		c := newCtr(r)
		d.containers[r.ID] = c
		d.names[r.Name] = r.ID
		rt, err := d.runtime(r.HostConfig)
		if err != nil {
			d.log.Error("container of an unknown runtime", "id", r.ID, "err", err)
			continue
		}
		ctx := context.TODO()
		switch r.State.Status {
		case container.StateRunning, container.StatePaused:
			d.countVolumes(c)
			t, err := rt.Connect(ctx, r.ID, d.paths(r.ID))
			if err != nil {
				return nil, err
			}
			st, _ := t.State(ctx)
			switch st.Status {
			case task.Created:
				// The daemon died between creating and starting it.
				t.Kill(ctx, syscall.SIGKILL, true)
			case task.Stopped:
				// It ended while no daemon ran (its monitor gone too after
				// a reboot): not running from now on; watch records how
				// it ended and applies its restart policy.
				c.State.Status, c.State.Pid = container.StateExited, 0
			}
			c.task = t
			d.restoreExecs(c, t)
			go d.watch(c, c.exited, t)
			if st.Status != task.Stopped {
				d.startHealth(c, t, true)
			}
		case container.StateRemoving:
			c.State.Status = container.StateDead
		default:
			if t, err := rt.Connect(ctx, r.ID, d.paths(r.ID)); err == nil {
				if st, _ := t.State(ctx); r.State.Status == container.StateCreated && (st.Status == task.Running || st.Status == task.Paused) {
					// Started by a daemon that died before its record said so.
					c.State = state{Status: container.StateRunning, Pid: st.Pid, StartedAt: st.Created}
					if st.Status == task.Paused {
						c.State.Status = container.StatePaused
					}
					d.countVolumes(c)
					c.task = t
					d.restoreExecs(c, t)
					go d.watch(c, c.exited, t)
					continue
				}
			}
			// Never started, or ended: what is left of its task goes.
			rt.Cleanup(ctx, r.ID, d.paths(r.ID))
			d.releaseShm(c)
			if restartOnBoot(c) {
				boot = append(boot, r.ID)
			}
		}
	}
	// Leftovers of containers whose record never made it, or whose
	// removal a crash interrupted.
	for _, root := range []string{d.cfg.DataRoot, d.cfg.ExecRoot} {
		entries, _ := os.ReadDir(filepath.Join(root, "containers"))
		for _, e := range entries {
			if _, ok := d.containers[e.Name()]; !ok {
				os.RemoveAll(filepath.Join(root, "containers", e.Name()))
			}
		}
	}
	var orphans []string
	err = d.snap.Walk(func(i snapshot.Info) error {
		if id, ok := strings.CutPrefix(i.Key, "container-"); ok {
			if _, known := d.containers[id]; !known {
				orphans = append(orphans, id)
			}
		}
		return nil
	})
	for _, id := range orphans {
		for _, rt := range d.runtimes {
			rt.Cleanup(context.TODO(), id, d.paths(id))
		}
		if err := d.snap.Remove(d.snapshotKey(id)); err != nil {
			d.log.Warn("remove orphan snapshot", "container", id, "err", err)
		}
	}
	return boot, err
}

// restartOnBoot is docker's rule for a stopped container when the daemon
// starts: "always" starts it even if it was stopped by hand;
// "unless-stopped" and "on-failure" (after an error, within its retries)
// only if it was not.
func restartOnBoot(c *ctr) bool {
	if c.State.Status != container.StateExited {
		return false // created and never started: docker leaves it too
	}
	p := c.HostConfig.RestartPolicy
	switch p.Name {
	case container.RestartPolicyAlways:
		return true
	case container.RestartPolicyUnlessStopped:
		return !c.ManuallyStopped
	case container.RestartPolicyOnFailure:
		return !c.ManuallyStopped && c.State.ExitCode != 0 && (p.MaximumRetryCount == 0 || c.RestartCount < p.MaximumRetryCount)
	}
	return false
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

// imageInUse reports whether a container uses image id.
func (d *Daemon) imageInUse(id digest.Digest) (string, bool) {
	for _, c := range d.all() {
		if c.Image == id.String() {
			return c.ID, true
		}
	}
	return "", false
}
