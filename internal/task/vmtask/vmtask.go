// Package vmtask is the VM backend of package task: each task boots the
// container's image as a lightweight VM (package vm) under a monitor
// process (package monitor, its VM mode) that owns QEMU, holds the
// workload's stdio through the guest's agent, writes its log and records
// its exit, so that VMs outlive the engine as containers do. The image is
// a shared read-only base disk; the container's writes go to a qcow2
// overlay kept in the container's data directory across runs.
package vmtask

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/monitored"
	"github.com/tent-project/tent/internal/vm"
	"github.com/tent-project/tent/internal/vm/wire"
	"golang.org/x/sys/unix"
)

// Name is the runtime's name, as --runtime takes it.
const Name = "tent-vm"

// MaxNetworks is how many networks a VM container can be on at once:
// its guest's NICs.
const MaxNetworks = wire.NICs

// DefaultMemory is a VM's memory when the container has no limit
// (guest pages are only backed once touched).
const DefaultMemory = 512 << 20

// Runtime is the VM backend.
type Runtime struct {
	host *vm.Host
	exe  string // the monitor binary
}

// New makes the backend: monitors run from exe, VMs on host.
func New(exe string, host *vm.Host) *Runtime { return &Runtime{host: host, exe: exe} }

func rootOf(p task.Paths) string { return filepath.Join(p.Dir, "rootfs") }

// filesOf holds the binds of single files a VM's shares are made of.
func filesOf(p task.Paths) string { return filepath.Join(p.Dir, "files") }

// unmountFiles undoes what workload made in dir.
func unmountFiles(dir string) {
	snapshot.UnmountBelow(dir)
	os.RemoveAll(dir)
}

// diskOf is the container's overlay: it lives with the container.
func diskOf(p task.Paths) string {
	data := p.Data
	if data == "" {
		data = filepath.Dir(p.ExitFile)
	}
	return filepath.Join(data, "vm-disk.qcow2")
}

// record is what Connect needs of a task: the monitor's QEMU and whether
// it was started.
type record struct {
	Pid     int       `json:"pid"`
	Created time.Time `json:"created"`
	Cgroup  string    `json:"cgroup,omitempty"`
	Net     bool      `json:"net,omitempty"` // QEMU has a namespace and a NIC for the engine's networks
}

func recordPath(p task.Paths) string { return filepath.Join(p.Dir, "vm.json") }

// Create implements task.Runtime.
func (r *Runtime) Create(ctx context.Context, id string, o task.CreateOpts) (_ task.Task, err error) {
	root := rootOf(o.Paths)
	r.Cleanup(ctx, id, o.Paths) // what a crash left
	spec, err := monitored.PrepareRoot(o, root)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			snapshot.Unmount(root)
			unmountFiles(filesOf(o.Paths))
		}
	}()
	proc, shares, err := workload(spec, filesOf(o.Paths))
	if err != nil {
		return nil, err
	}
	disk := diskOf(o.Paths)
	if err := r.makeDisk(id, o.Rootfs, root, disk); err != nil {
		return nil, err
	}
	mem, cpus := machineSize(spec)
	cgPath, res, err := hostCgroup(id, spec)
	if err != nil {
		return nil, err
	}
	const agentSock, qmpSock = "agent.sock", "qmp.sock" // in the monitor's directory, where QEMU runs
	console := filepath.Join(o.Dir, "console.log")
	m := vm.Machine{Disk: disk, Agent: agentSock, QMP: qmpSock, Console: console, MemMiB: mem, CPUs: cpus, Net: o.Network, Shares: shares}
	if len(shares) == 0 && o.Restore == "" {
		// Started from a template rather than booted, where one can be
		// made (vm.Host.Template: else the VM boots, as it did before).
		m.Template, _ = r.host.Template(mem, cpus)
	}
	cmd, err := r.host.Command(m)
	if err != nil {
		return nil, err
	}
	b, _ := json.Marshal(spec)
	if err := os.WriteFile(filepath.Join(o.Dir, "config.json"), b, 0o600); err != nil {
		return nil, err
	}
	os.Remove(o.ExitFile)
	pid, reap, err := monitor.Spawn(r.exe, o.Dir, monitor.Config{
		ID: id, Log: o.Log, ExitFile: o.ExitFile,
		Tty: o.IO.Terminal, OpenStdin: o.IO.OpenStdin, StdinOnce: o.IO.StdinOnce,
		VM: &monitor.VMConfig{Argv: cmd.Args, AgentSocket: agentSock, QMPSocket: qmpSock, Console: console, Process: proc,
			Cgroup: cgPath, Resources: res, NetNS: o.Network, Restore: o.Restore, Disk: disk, Template: m.Template},
	}, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to create task for container: %w", err)
	}
	go reap()
	rec := record{Pid: pid, Created: time.Now().UTC(), Cgroup: cgPath, Net: o.Network}
	rb, _ := json.Marshal(rec)
	os.WriteFile(recordPath(o.Paths), rb, 0o600)
	return &Task{Client: monitored.Client{ID: id, Dir: o.Dir}, id: id, paths: o.Paths, rec: rec, spec: spec}, nil
}

// makeDisk makes the container's disk over its image's base disk, unless
// it has one (its first run, or a cp into it before; later runs keep
// it); root is its root file system, rootfs mounted there.
func (r *Runtime) makeDisk(id string, rootfs []task.Mount, root, disk string) error {
	if _, err := os.Stat(disk); err == nil {
		return nil
	}
	base, err := r.baseDisk(id, rootfs, root)
	if err != nil {
		return err
	}
	return r.host.Overlay(base, disk)
}

// baseDisk is the image's shared disk: made from the read-only layers of
// an overlay root (keyed by them), or else from the container's root.
func (r *Runtime) baseDisk(id string, mounts []task.Mount, root string) (string, error) {
	if len(mounts) == 1 && mounts[0].Type == "overlay" {
		for _, opt := range mounts[0].Options {
			lower, ok := strings.CutPrefix(opt, "lowerdir=")
			if !ok {
				continue
			}
			lowers := strings.Split(lower, ":")
			if len(lowers) == 1 {
				return r.host.BaseDisk(lower, lowers[0])
			}
			view, err := os.MkdirTemp(filepath.Dir(root), "layers-")
			if err != nil {
				return "", err
			}
			defer os.Remove(view)
			if err := unix.Mount("overlay", view, "overlay", unix.MS_RDONLY, "lowerdir="+lower); err != nil {
				return "", fmt.Errorf("mount the image's layers: %w", err)
			}
			defer unix.Unmount(view, unix.MNT_DETACH)
			return r.host.BaseDisk(lower, view)
		}
	}
	return r.host.BaseDisk("container:"+id, root)
}

// workload is the guest's process from the spec, with the engine's files
// (/etc/hosts and the like) carried over as content, the binds of
// directories (volumes and binds) as 9p shares, binds of single files as
// shares of a directory of files (below files) that holds that file
// alone, bound there (9p shares directories; the file's own directory
// would show the guest its neighbours), and tmpfs mounts made in the
// guest.
func workload(s *specs.Spec, files string) (wire.Process, []vm.Share, error) {
	p := s.Process
	if p == nil || len(p.Args) == 0 {
		return wire.Process{}, nil, fmt.Errorf("no command: %w", errdefs.ErrInvalidArgument)
	}
	w := wire.FromSpec(p) // its terminal is the monitor's to say (Config.Tty)
	w.Hostname, w.Files = s.Hostname, map[string][]byte{}
	if s.Root != nil {
		w.ReadonlyRootfs = s.Root.Readonly
	}
	var shares []vm.Share
	for _, m := range s.Mounts {
		bind := m.Type == "bind" || slices.Contains(m.Options, "bind") || slices.Contains(m.Options, "rbind")
		switch {
		case m.Type == "tmpfs" && !isGuestOwn(m.Destination):
			var opts []string
			for _, o := range m.Options {
				if strings.HasPrefix(o, "size=") || strings.HasPrefix(o, "mode=") {
					opts = append(opts, o)
				}
			}
			w.Mounts = append(w.Mounts, wire.Mount{Dest: m.Destination, ReadOnly: slices.Contains(m.Options, "ro"), Options: strings.Join(opts, ",")})
			continue
		case !bind || isGuestOwn(m.Destination):
			continue // the guest mounts its own proc, sys, dev, shm
		}
		fi, err := os.Stat(m.Source)
		if err != nil {
			return wire.Process{}, nil, err
		}
		if fi.IsDir() {
			tag := fmt.Sprintf("v%d", len(shares))
			ro := slices.Contains(m.Options, "ro")
			shares = append(shares, vm.Share{Tag: tag, Path: m.Source, ReadOnly: ro})
			w.Mounts = append(w.Mounts, wire.Mount{Tag: tag, Dest: m.Destination, ReadOnly: ro})
			continue
		}
		switch m.Destination {
		case "/etc/hosts", "/etc/hostname", "/etc/resolv.conf": // the engine's, written into the guest
		default:
			tag := fmt.Sprintf("v%d", len(shares))
			ro := slices.Contains(m.Options, "ro")
			dir, err := bindFile(m.Source, filepath.Join(files, tag), ro)
			if err != nil {
				return wire.Process{}, nil, fmt.Errorf("%s: %w", m.Destination, err)
			}
			shares = append(shares, vm.Share{Tag: tag, Path: dir, ReadOnly: ro})
			w.Mounts = append(w.Mounts, wire.Mount{Tag: tag, File: filepath.Base(m.Source), Dest: m.Destination, ReadOnly: ro})
			continue
		}
		b, err := os.ReadFile(m.Source)
		if err != nil {
			return wire.Process{}, nil, err
		}
		w.Files[m.Destination] = b
	}
	return w, shares, nil
}

// bindFile makes dir hold the file src alone, bound there under its own
// name (read-only with ro).
func bindFile(src, dir string, ro bool) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, filepath.Base(src))
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return "", err
	}
	f.Close()
	if err := unix.Mount(src, dst, "", unix.MS_BIND, ""); err != nil {
		return "", fmt.Errorf("bind %s: %w", src, err)
	}
	if ro {
		if err := unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return "", fmt.Errorf("bind %s read-only: %w", src, err)
		}
	}
	return dir, nil
}

// isGuestOwn tells the mounts the guest makes itself.
func isGuestOwn(dest string) bool {
	switch filepath.Clean(dest) {
	case "/proc", "/sys", "/dev", "/dev/pts", "/dev/shm", "/dev/mqueue", "/sys/fs/cgroup":
		return true
	}
	return false
}

// machineSize is the VM's memory (MiB) and vCPUs: --memory plus what
// the guest's kernel and agent take (spec.VMOverhead), and --cpus
// rounded up.
func machineSize(s *specs.Spec) (mem, cpus int) {
	mem, cpus = DefaultMemory>>20, 1
	if s.Linux == nil || s.Linux.Resources == nil {
		return mem, cpus
	}
	res := s.Linux.Resources
	if res.Memory != nil && res.Memory.Limit != nil && *res.Memory.Limit > 0 {
		mem = int((*res.Memory.Limit + spec.VMOverhead) >> 20)
	}
	if c := res.CPU; c != nil && c.Quota != nil && c.Period != nil && *c.Quota > 0 && *c.Period > 0 {
		cpus = int((uint64(*c.Quota) + *c.Period - 1) / *c.Period)
	}
	return mem, cpus
}

// hostCgroup is the cgroup QEMU runs in (the container's) and the limits
// it has there: the CPU's and the block I/O weight. Memory is the guest's
// size; a memory limit on QEMU would kill the VM rather than bound it.
func hostCgroup(id string, s *specs.Spec) (string, *specs.LinuxResources, error) {
	if s.Linux == nil {
		return "", nil, nil
	}
	path, err := cgroups.ConvertPath(s.Linux.CgroupsPath, id, false)
	if err != nil {
		return "", nil, err
	}
	res := &specs.LinuxResources{}
	if r := s.Linux.Resources; r != nil {
		res.CPU, res.BlockIO = r.CPU, r.BlockIO
	}
	return path, res, nil
}

// Connect implements task.Runtime.
func (r *Runtime) Connect(ctx context.Context, id string, paths task.Paths) (task.Task, error) {
	t := &Task{Client: monitored.Client{ID: id, Dir: paths.Dir}, id: id, paths: paths}
	if b, err := os.ReadFile(recordPath(paths)); err == nil {
		json.Unmarshal(b, &t.rec)
	}
	t.spec = monitored.BundleSpec(paths.Dir)
	return t, nil
}

// Cleanup implements task.Runtime.
func (r *Runtime) Cleanup(ctx context.Context, id string, paths task.Paths) error {
	unmountFiles(filesOf(paths))
	return snapshot.Unmount(rootOf(paths))
}

// Task is a VM under its monitor.
type Task struct {
	monitored.Client // stdio, terminal and execs, through the monitor
	id               string
	paths            task.Paths
	rec              record
	spec             *specs.Spec

	waiter *monitor.Waiter
}

func (t *Task) ID() string { return t.id }

// Pid is QEMU's.
func (t *Task) Pid() int { return t.rec.Pid }

func notInVM(what string) error {
	return fmt.Errorf("%s is not supported for VM containers yet: %w", what, errdefs.ErrNotImplemented)
}

func (t *Task) alive() bool { return t.rec.Pid > 0 && syscall.Kill(t.rec.Pid, 0) == nil }

func (t *Task) State(ctx context.Context) (task.State, error) {
	if _, err := os.Stat(filepath.Join(t.paths.Dir, "started")); err == nil && t.alive() {
		status := task.Running
		if _, err := os.Stat(t.pausedFile()); err == nil {
			status = task.Paused
		}
		return task.State{Status: status, Pid: t.rec.Pid, Created: t.rec.Created}, nil
	}
	if t.alive() {
		return task.State{Status: task.Created, Pid: t.rec.Pid, Created: t.rec.Created}, nil
	}
	return task.State{Status: task.Stopped}, nil
}

func (t *Task) Spec(ctx context.Context) (*specs.Spec, error) {
	if t.spec == nil {
		return nil, fmt.Errorf("task %s has ended: %w", t.id, errdefs.ErrConflict)
	}
	return t.spec, nil
}

func (t *Task) Start(ctx context.Context) error {
	if err := t.start(); err != nil {
		// QEMU may be ending (a restore whose state it could not load):
		// then its words, not what failed for want of it.
		for deadline := time.Now().Add(2 * time.Second); t.alive() && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
		}
		if !t.alive() {
			return fmt.Errorf("the VM ended before it started: %s", monitor.LogTail(t.paths.Dir, 1500))
		}
		return err
	}
	return os.WriteFile(filepath.Join(t.paths.Dir, "started"), nil, 0o600)
}

func (t *Task) start() error {
	var net []wire.Iface
	if t.rec.Net {
		var err error
		if net, err = mirrorNetwork(t.rec.Pid); err != nil {
			return err
		}
	}
	t.waiter = monitor.NewWaiter(t.paths.Dir, t.paths.ExitFile)
	return monitor.Start(t.paths.Dir, net)
}

// unpaused refuses what the guest must answer (to do what) while the VM
// is paused: its vCPUs are stopped.
func (t *Task) unpaused(what string) error {
	if _, err := os.Stat(t.pausedFile()); err == nil {
		return fmt.Errorf("the VM is paused: unpause it first to %s: %w", what, errdefs.ErrConflict)
	}
	return nil
}

// SyncNetwork implements task.NetworkSyncer: the guest's NICs follow
// the endpoints the engine wired or unwired in QEMU's namespace.
func (t *Task) SyncNetwork(ctx context.Context) error {
	if !t.rec.Net {
		return fmt.Errorf("the VM was started without networks: %w", errdefs.ErrConflict)
	}
	if err := t.unpaused("change its network"); err != nil {
		return err
	}
	net, err := mirrorNetwork(t.rec.Pid)
	if err != nil {
		return err
	}
	return monitor.SetNetwork(t.paths.Dir, net)
}

func (t *Task) Wait(ctx context.Context) (task.Exit, <-chan struct{}, error) {
	w := t.waiter
	if w == nil {
		w = monitor.NewWaiter(t.paths.Dir, t.paths.ExitFile)
	}
	e, gone, err := w.Wait()
	if err != nil {
		if t.alive() { // the monitor died: nothing holds the VM any more
			syscall.Kill(t.rec.Pid, syscall.SIGKILL)
		}
		e = monitor.Exit{Code: 255, At: time.Now().UTC()}
	}
	return task.Exit{Code: e.Code, At: e.At}, gone, err
}

func (t *Task) Kill(ctx context.Context, sig syscall.Signal, all bool) error {
	err := monitor.Signal(t.paths.Dir, sig, all)
	if errors.Is(err, monitor.ErrGone) {
		return fmt.Errorf("task %s has ended: %w", t.id, errdefs.ErrConflict)
	}
	return err
}

// Checkpoint saves the VM's whole state into dir (QEMU's own snapshot);
// with exit the VM then ends, else it runs on. Create with Restore boots
// the container's VM from it.
func (t *Task) Checkpoint(ctx context.Context, dir string, exit bool) error {
	if !t.alive() {
		return fmt.Errorf("task %s has ended: %w", t.id, errdefs.ErrConflict)
	}
	return monitor.Checkpoint(t.paths.Dir, dir, exit)
}

// Pause stops the VM's vCPUs.
func (t *Task) Pause(ctx context.Context) error {
	if err := monitor.Pause(t.paths.Dir, true); err != nil {
		return err
	}
	return os.WriteFile(t.pausedFile(), nil, 0o600)
}

// Resume lets a paused VM run again.
func (t *Task) Resume(ctx context.Context) error {
	if err := monitor.Pause(t.paths.Dir, false); err != nil {
		return err
	}
	return os.Remove(t.pausedFile())
}

func (t *Task) pausedFile() string { return filepath.Join(t.paths.Dir, pausedName) }

// pausedName is the file in a VM's monitor directory that says it is
// paused.
const pausedName = "paused"

func (t *Task) Pids(ctx context.Context) ([]int, error) {
	if !t.alive() {
		return nil, nil
	}
	return []int{t.rec.Pid}, nil
}

// Stats are QEMU's: what the VM costs the host.
func (t *Task) Stats(ctx context.Context) (*cgroups.Stats, error) {
	if t.rec.Cgroup == "" {
		return nil, notInVM("stats")
	}
	cg, err := cgroups.New(t.rec.Cgroup)
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// Update changes the CPU limits of QEMU's cgroup; the guest's memory and
// process limits are its size and its own, fixed while it runs.
func (t *Task) Update(ctx context.Context, r *specs.LinuxResources) error {
	var was specs.LinuxResources
	if t.spec != nil && t.spec.Linux != nil && t.spec.Linux.Resources != nil {
		was = *t.spec.Linux.Resources
	}
	if memoryLimit(r) != memoryLimit(&was) || pidsLimit(r) != pidsLimit(&was) {
		return notInVM("changing a running VM's memory or pids limit")
	}
	if t.rec.Cgroup == "" {
		return notInVM("updating a running VM's resources")
	}
	cg, err := cgroups.New(t.rec.Cgroup)
	if err != nil {
		return err
	}
	return cg.Set(&specs.LinuxResources{CPU: r.CPU, BlockIO: r.BlockIO})
}

func memoryLimit(r *specs.LinuxResources) [3]int64 {
	var l [3]int64
	if m := r.Memory; m != nil {
		for i, p := range []*int64{m.Limit, m.Reservation, m.Swap} {
			if p != nil {
				l[i] = *p
			}
		}
	}
	return l
}

func pidsLimit(r *specs.LinuxResources) int64 {
	if r.Pids != nil && r.Pids.Limit != nil && *r.Pids.Limit > 0 {
		return *r.Pids.Limit
	}
	return 0
}

// Delete unmounts the root the engine's Prepare read; the container's
// disk stays for its next run.
func (t *Task) Delete(ctx context.Context) error {
	os.Remove(filepath.Join(t.paths.Dir, "started"))
	os.Remove(t.pausedFile())
	unmountFiles(filesOf(t.paths))
	return snapshot.Unmount(rootOf(t.paths))
}
