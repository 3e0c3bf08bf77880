// Package daemon is the composition root of the engine and the
// containers' state machine: it opens the stores and composes the services
// (images, volumes, networks, execs, runtimes, the builder), and drives
// each container's lifecycle (create, start on its runtime, watch for its
// end, restart policies, stop, remove, re-adoption at start-up). It
// answers in the Engine API's types (github.com/moby/moby/api), which the
// server package puts on the wire.
//
// On disk: DataRoot holds what must survive a reboot (content/, snapshots/,
// metadata.db, containers/ID/ with the log and the exit file); ExecRoot
// holds what lives while the host is up (the API socket, the runtime's
// state, containers/ID/ with the bundle, the mounted rootfs and the
// monitor's socket).
package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/builder"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/content"
	"github.com/tent-project/tent/internal/ctrspec"
	"github.com/tent-project/tent/internal/eventbus"
	"github.com/tent-project/tent/internal/execs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/imagesvc"
	"github.com/tent-project/tent/internal/netsvc"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/runtimes"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/ocibin"
	"github.com/tent-project/tent/internal/volume"
	bolt "go.etcd.io/bbolt"
)

// Config is the daemon's configuration.
type Config struct {
	DataRoot string
	ExecRoot string
	// Exe is the binary that monitors and container inits run from
	// (default: tent-monitor next to this executable, else this one).
	Exe string
	// CgroupParent is the cgroup under which containers go (default /tent).
	CgroupParent string
	// LogDriver and LogOpts are the log driver of containers that name
	// none, and its options where they set none (dockerd's --log-driver
	// and --log-opt).
	LogDriver string
	LogOpts   map[string]string
	Logger    *slog.Logger
	// InsecureRegistries may be reached over plain HTTP or unverified TLS
	// (host[:port] or CIDR; loopback registries always may).
	InsecureRegistries []string
	// InitPath is the init that --init runs as a container's PID 1
	// (default: docker-init or tini-static from $PATH, as dockerd finds
	// docker-init); Init gives every container one unless it says no.
	InitPath string
	Init     bool
	// BuildContextLimit is the largest build context taken (0:
	// builder.DefaultContextLimit).
	BuildContextLimit int64
	// Network configures the networks (its Root and Log are the
	// daemon's: DataRoot/network).
	Network network.Config
	// Runtimes are OCI runtime binaries by name (dockerd's
	// --add-runtime), DefaultRuntime the runtime of containers that name
	// none (default: tent's own).
	Runtimes       map[string]ocibin.Binary
	DefaultRuntime string
	// NoVMTemplates: every VM boots (vm.Host.NoTemplates).
	NoVMTemplates bool
}

// Daemon is a running engine.
type Daemon struct {
	// Service answers the image endpoints; its Mu serializes image
	// deletion against container creation.
	*imagesvc.Service
	// Endpoints answers the volume endpoints.
	volume.Endpoints
	// Networks answers the network endpoints but connect and disconnect.
	*netsvc.Networks
	// Manager answers the exec endpoints.
	*execs.Manager
	cfg     Config
	db      *bolt.DB
	content *content.Store
	snap    snapshot.Snapshotter
	driver  string // "overlay2" or "native"
	images  *images.Store
	vols    *volume.Store
	net     *network.Manager
	builder *builder.Builder
	// runtimes are the task backends by name (HostConfig.Runtime).
	runtimes *runtimes.Set
	events   *eventbus.Bus
	log      *slog.Logger
	started  time.Time

	ctrs    *containers.Store
	specs   *ctrspec.Maker
	closeMu sync.Mutex
	closed  bool
	// bg counts background work (directory removals) that Close waits
	// for; quit tells it to stop.
	bg   sync.WaitGroup
	quit chan struct{}
}

// New opens (or makes) the stores and re-adopts the containers that ran
// under a previous daemon.
func New(cfg Config) (*Daemon, error) {
	if cfg.DataRoot == "" || cfg.ExecRoot == "" {
		return nil, errors.New("daemon: data root and exec root are required")
	}
	if cfg.Exe == "" {
		exe, err := monitorBinary()
		if err != nil {
			return nil, err
		}
		cfg.Exe = exe
	}
	if cfg.CgroupParent == "" {
		cfg.CgroupParent = "/tent"
	}
	if cfg.InitPath == "" {
		cfg.InitPath = findInit()
	} else if _, err := os.Stat(cfg.InitPath); err != nil {
		return nil, fmt.Errorf("--init-path: %w", err)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	for _, d := range []string{cfg.DataRoot, cfg.ExecRoot, filepath.Join(cfg.DataRoot, "containers"), filepath.Join(cfg.ExecRoot, "containers")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, err
		}
	}
	d := &Daemon{cfg: cfg, log: cfg.Logger, events: eventbus.New(), started: time.Now(), quit: make(chan struct{})}
	var err error
	d.db, err = bolt.Open(filepath.Join(cfg.DataRoot, "metadata.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("open %s (is another daemon using this data root?): %w", filepath.Join(cfg.DataRoot, "metadata.db"), err)
	}
	d.ctrs = containers.NewStore(d.db)
	ok := false
	defer func() {
		if !ok {
			d.Close()
		}
	}()
	if d.content, err = content.New(filepath.Join(cfg.DataRoot, "content")); err != nil {
		return nil, err
	}
	snapRoot := filepath.Join(cfg.DataRoot, "snapshots")
	if err := os.MkdirAll(snapRoot, 0o711); err != nil {
		return nil, err
	}
	if snapshot.OverlaySupported(snapRoot) {
		d.driver = imagesvc.OverlayDriver
		d.snap, err = snapshot.NewOverlay(snapRoot)
	} else {
		d.driver = "native"
		d.log.Warn("overlayfs is not usable here: falling back to copying layers (native snapshotter)")
		d.snap, err = snapshot.NewNative(snapRoot)
	}
	if err != nil {
		return nil, err
	}
	if d.images, err = images.New(d.db, d.content, d.snap); err != nil {
		return nil, err
	}
	reg, err := registry.New(cfg.InsecureRegistries)
	if err != nil {
		return nil, err
	}
	d.Service = imagesvc.New(imagesvc.Config{Store: d.images, Content: d.content, Snap: d.snap, Driver: d.driver,
		Registry: reg, Events: d.events, Containers: containerImages{d}})
	d.vols = volume.New(d.db, filepath.Join(cfg.DataRoot, "volumes"), func(action events.Action, name string) {
		d.event(events.VolumeEventType, action, name, map[string]string{"driver": "local"})
	})
	d.Manager = execs.New(execTargets{d})
	d.Endpoints = volume.Endpoints{Store: d.vols, Users: d.volumeUsers}
	if d.runtimes, err = runtimes.Open(runtimes.Config{Exe: cfg.Exe, ExecRoot: cfg.ExecRoot, DataRoot: cfg.DataRoot,
		Binaries: cfg.Runtimes, Default: cfg.DefaultRuntime, Log: d.log, NoVMTemplates: cfg.NoVMTemplates,
		CgroupParent: cfg.CgroupParent}); err != nil {
		return nil, err
	}
	if d.builder, err = builder.New(d.db, d.images, d.snap, buildSteps{d}, filepath.Join(cfg.DataRoot, "build")); err != nil {
		return nil, err
	}
	netCfg := cfg.Network
	netCfg.Root, netCfg.Log = filepath.Join(cfg.DataRoot, "network"), d.log
	if d.net, err = network.Open(netCfg); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	d.Networks = netsvc.New(d.net, d.events, d.ctrs)
	d.specs = &ctrspec.Maker{Containers: d.ctrs, Networks: d.Networks, Net: d.net, Volumes: d.vols,
		CgroupParent: cfg.CgroupParent, InitPath: cfg.InitPath, Init: cfg.Init, FilesDir: d.dataDir, RunDir: d.execDir}
	boot, err := d.restore()
	if err != nil {
		return nil, err
	}
	// Endpoints of containers that ended while no daemon ran go (their
	// namespaces, and so their veths, went with them).
	if err := d.net.Reconcile(func(id string) bool {
		c, err := d.ctrs.Get(id)
		if err != nil {
			return false
		}
		c.Mu.Lock()
		defer c.Mu.Unlock()
		return c.Running()
	}); err != nil {
		return nil, fmt.Errorf("networks: %w", err)
	}
	ok = true
	// Containers whose restart policy says so start with the daemon (one
	// at a time, while the API already answers).
	go func() {
		for _, id := range boot {
			if err := d.Start(id, ""); err != nil && !IsNotModified(err) {
				d.log.Error("start with the daemon (restart policy)", "container", id, "err", err)
			}
		}
	}()
	return d, nil
}

// monitorBinary finds the binary monitors run from: tent-monitor next to
// this executable, else this executable (which has a monitor command too).
func monitorBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	small := filepath.Join(filepath.Dir(exe), "tent-monitor")
	if fi, err := os.Stat(small); err == nil && fi.Mode().IsRegular() {
		return small, nil
	}
	return exe, nil
}

// Close releases the stores. Running containers keep running; a new
// daemon re-adopts them.
func (d *Daemon) Close() error {
	d.closeMu.Lock()
	if !d.closed {
		close(d.quit)
	}
	d.closed = true
	d.closeMu.Unlock()
	d.bg.Wait()
	var errs []error
	if d.runtimes != nil {
		errs = append(errs, d.runtimes.Close())
	}
	if d.net != nil {
		d.net.Close()
	}
	if d.snap != nil {
		errs = append(errs, d.snap.Close())
	}
	if d.db != nil {
		errs = append(errs, d.db.Close())
	}
	return errors.Join(errs...)
}

// background runs f in a goroutine that Close waits for.
func (d *Daemon) background(f func()) {
	d.bg.Add(1)
	go func() {
		defer d.bg.Done()
		f()
	}()
}

// paths are where a container's task keeps its files.
func (d *Daemon) paths(id string) task.Paths {
	return task.Paths{Dir: d.execDir(id), ExitFile: d.exitFile(id), Data: d.dataDir(id)}
}

func (d *Daemon) dataDir(id string) string {
	return filepath.Join(d.cfg.DataRoot, "containers", id)
}

func (d *Daemon) execDir(id string) string {
	return filepath.Join(d.cfg.ExecRoot, "containers", id)
}

// findInit looks for a static init for --init: Debian's docker.io links
// docker-init to tini-static (static, so it runs in any image).
func findInit() string {
	for _, name := range []string{"docker-init", "tini-static"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}
