package runtime

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"golang.org/x/sys/unix"
)

// DefaultRoot is where state lives when the caller names no root, as runc's
// /run/runc.
const DefaultRoot = "/run/tent-runtime"

// Runtime manages the containers whose state lives under one root directory.
type Runtime struct {
	root          string
	systemdCgroup bool
	binary        *os.File
}

// Option configures a Runtime.
type Option func(*Runtime)

// WithSystemdCgroup reads cgroupsPath as systemd's "slice:prefix:name"
// form. The cgroups are still managed through cgroupfs.
func WithSystemdCgroup(on bool) Option { return func(r *Runtime) { r.systemdCgroup = on } }

// WithBinary starts containers' inits and exec helpers from bin, a sealed
// copy of a tent binary made by SealBinary, instead of sealing a copy of
// this process's binary for each of them. The caller keeps bin open.
func WithBinary(bin *os.File) Option { return func(r *Runtime) { r.binary = bin } }

// New returns a Runtime keeping state under root (DefaultRoot if empty).
func New(root string, opts ...Option) (*Runtime, error) {
	if root == "" {
		root = DefaultRoot
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	r := &Runtime{root: abs}
	for _, o := range opts {
		o(r)
	}
	return r, nil
}

// Container is a handle on one container's state. It holds no resources;
// every method reads the current state from disk and the kernel.
type Container struct {
	rt  *Runtime
	dir string
	rec *record
}

// Root is the directory holding the containers' state.
func (r *Runtime) Root() string { return r.root }

// Load finds an existing container.
func (r *Runtime) Load(id string) (*Container, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	dir := filepath.Join(r.root, id)
	rec, err := loadRecord(dir, id)
	if err != nil {
		return nil, err
	}
	return &Container{rt: r, dir: dir, rec: rec}, nil
}

// List returns every container under the root, sorted by id.
func (r *Runtime) List() ([]*Container, error) {
	entries, err := os.ReadDir(r.root)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var out []*Container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		c, err := r.Load(e.Name())
		if err != nil {
			continue // half-created or foreign directory
		}
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rec.ID < out[j].rec.ID })
	return out, nil
}

// ID returns the container's id.
func (c *Container) ID() string { return c.rec.ID }

// Spec returns the configuration the container was created with.
func (c *Container) Spec() *specs.Spec { return c.rec.Spec }

func (c *Container) cgroup() (cgroups.Manager, error) {
	return cgroups.New(c.rec.CgroupPath)
}

// Status computes the container's status now.
func (c *Container) Status() Status {
	if !c.rec.alive() {
		return Stopped
	}
	if cg, err := c.cgroup(); err == nil {
		if frozen, _ := cg.Frozen(); frozen {
			return Paused
		}
	}
	if _, err := os.Stat(filepath.Join(c.dir, fifoName)); err == nil {
		return Created
	}
	return Running
}

// State returns the OCI state.
func (c *Container) State() State {
	st := State{
		OCIVersion:  specs.Version,
		ID:          c.rec.ID,
		Status:      c.Status(),
		Bundle:      c.rec.Bundle,
		Rootfs:      c.rec.Rootfs,
		Created:     c.rec.Created,
		Owner:       c.rec.Owner,
		Annotations: c.rec.Annotations,
	}
	if st.Status != Stopped {
		st.Pid = c.rec.Pid
	}
	return st
}

// ociState is the state passed to hooks on their stdin.
func (c *Container) ociState(status Status) specs.State {
	return hookState(c.rec, status)
}

func hookState(rec *record, status Status) specs.State {
	return specs.State{
		Version:     specs.Version,
		ID:          rec.ID,
		Status:      specs.ContainerState(status),
		Pid:         rec.Pid,
		Bundle:      rec.Bundle,
		Annotations: rec.Annotations,
	}
}

// Start lets a created container run its program.
func (c *Container) Start() error {
	if st := c.Status(); st != Created {
		return fmt.Errorf("cannot start a container that is %s: %w", st, errdefs.ErrConflict)
	}
	fifo := filepath.Join(c.dir, fifoName)
	// The init holds the fifo open for reading and writing, so opening it
	// for writing never blocks; ENXIO would mean nobody holds it.
	f, err := os.OpenFile(fifo, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("start %s: open exec fifo: %w", c.rec.ID, err)
	}
	_, err = f.Write([]byte{0})
	f.Close()
	if err != nil {
		return fmt.Errorf("start %s: %w", c.rec.ID, err)
	}
	// A short-lived container may have run and been deleted (its state
	// directory with it) by its parent already.
	if err := os.Remove(fifo); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("start %s: %w", c.rec.ID, err)
	}
	if h := c.rec.Spec.Hooks; h != nil {
		if err := runHooks("poststart", h.Poststart, c.ociState(Running)); err != nil {
			// A failed poststart hook stops the container, as runc does.
			_ = c.Signal(unix.SIGKILL, true)
			return err
		}
	}
	return nil
}

// Signal sends sig to the init, or with all to every process of the container.
func (c *Container) Signal(sig syscall.Signal, all bool) error {
	st := c.Status()
	if st == Stopped && !all {
		return fmt.Errorf("container %s is not running: %w", c.rec.ID, errdefs.ErrConflict)
	}
	if st == Created && terminates(sig) {
		// The init waits for Start and drops what it catches (see
		// initChild); a created container ends on a terminating signal,
		// as runc's does.
		sig = unix.SIGKILL
	}
	if !all {
		return signalInit(c.rec, sig)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	if sig == unix.SIGKILL && st != Paused {
		// Freeze first so no process can fork away from the kill.
		if err := cg.Freeze(); err == nil {
			defer cg.Thaw()
		}
	}
	pids, err := cg.Pids()
	if err != nil {
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, sig); err != nil && err != unix.ESRCH {
			return fmt.Errorf("signal %d: %w", pid, err)
		}
	}
	if st == Paused && sig == unix.SIGKILL {
		// A frozen process cannot die; let it.
		return cg.Thaw()
	}
	return nil
}

// terminates reports whether sig's default action ends a process.
func terminates(sig syscall.Signal) bool {
	switch sig {
	case 0, unix.SIGCHLD, unix.SIGURG, unix.SIGWINCH, unix.SIGCONT,
		unix.SIGSTOP, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU:
		return false
	}
	return true
}

// signalInit signals the init through a pidfd, so a PID recycled since the
// state was read cannot receive it.
func signalInit(rec *record, sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(rec.Pid, 0)
	if err != nil {
		if err == unix.ESRCH {
			return fmt.Errorf("container %s is not running: %w", rec.ID, errdefs.ErrConflict)
		}
		return unix.Kill(rec.Pid, sig)
	}
	defer unix.Close(fd)
	if !rec.alive() {
		return fmt.Errorf("container %s is not running: %w", rec.ID, errdefs.ErrConflict)
	}
	return unix.PidfdSendSignal(fd, sig, nil, 0)
}

// Pause freezes every process of the container.
func (c *Container) Pause() error {
	if st := c.Status(); st != Running && st != Created {
		return fmt.Errorf("cannot pause a container that is %s: %w", st, errdefs.ErrConflict)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Freeze()
}

// Resume thaws a paused container.
func (c *Container) Resume() error {
	if st := c.Status(); st != Paused {
		return fmt.Errorf("cannot resume a container that is %s: %w", st, errdefs.ErrConflict)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Thaw()
}

// Pids lists the host PIDs of the container's processes.
func (c *Container) Pids() ([]int, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Pids()
}

// Stats reads the counters of the container's cgroup.
func (c *Container) Stats() (*cgroups.Stats, error) {
	cg, err := c.cgroup()
	if err != nil {
		return nil, err
	}
	return cg.Stats()
}

// OOMKills counts the container's processes killed for lack of memory.
func (c *Container) OOMKills() (uint64, error) {
	cg, err := c.cgroup()
	if err != nil {
		return 0, err
	}
	return cg.OOMKills()
}

// Update writes new resource limits, as `runc update` does.
func (c *Container) Update(r *specs.LinuxResources) error {
	if c.Status() == Stopped {
		return fmt.Errorf("container %s is stopped: %w", c.rec.ID, errdefs.ErrConflict)
	}
	cg, err := c.cgroup()
	if err != nil {
		return err
	}
	return cg.Set(r)
}

// Delete removes a stopped (or, with force, any) container: its processes
// are killed, its cgroup and state removed and its poststop hooks run.
// A created container that was never started may be deleted without force.
func (c *Container) Delete(force bool) error {
	st := c.Status()
	switch st {
	case Stopped:
		// Without a PID namespace the init's children outlive it; they
		// still hold the cgroup, so they go too.
		if pids, _ := c.Pids(); len(pids) > 0 {
			c.killAndWait()
		}
	case Created:
		c.killAndWait()
	default:
		if !force {
			return fmt.Errorf("cannot delete container %s that is not stopped: %s: %w", c.rec.ID, st, errdefs.ErrConflict)
		}
		c.killAndWait()
	}
	return c.destroy()
}

// killAndWait kills every process and waits (up to 10s) until the init is
// gone and the cgroup empty. With its own PID namespace, killing the init
// is enough: the kernel kills the rest of the namespace.
func (c *Container) killAndWait() {
	var pidfd int = -1
	if c.rec.alive() {
		if fd, err := unix.PidfdOpen(c.rec.Pid, 0); err == nil && c.rec.alive() {
			pidfd = fd
			defer unix.Close(fd)
		}
	}
	if c.ownsPIDNamespace() && pidfd >= 0 {
		_ = unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	} else {
		_ = c.Signal(unix.SIGKILL, true)
		_ = signalInit(c.rec, unix.SIGKILL)
	}
	deadline := time.Now().Add(10 * time.Second)
	if pidfd >= 0 {
		// A pidfd turns readable when its process exits, child of ours or not.
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
		_, _ = unix.Poll(fds, 10000)
	}
	cg, err := c.cgroup()
	for pause := 100 * time.Microsecond; time.Now().Before(deadline); pause *= 2 {
		empty := true
		if err == nil {
			if pids, _ := cg.Pids(); len(pids) > 0 {
				empty = false
			}
		}
		if empty && !c.rec.alive() {
			return
		}
		time.Sleep(min(pause, 10*time.Millisecond))
	}
}

// ownsPIDNamespace reports whether the container has a PID namespace of its own.
func (c *Container) ownsPIDNamespace() bool {
	for _, ns := range c.rec.Spec.Linux.Namespaces {
		if ns.Type == specs.PIDNamespace && ns.Path == "" {
			return true
		}
	}
	return false
}

// destroy removes everything the container left: cgroup, state directory;
// then it runs the poststop hooks. Each step runs even if one before failed.
func (c *Container) destroy() error {
	var errs []error
	if c.rec.RootMount != 0 {
		if err := unbindSharedRoot(c.rec.Rootfs, c.rec.RootMount); err != nil {
			errs = append(errs, err)
		}
	}
	if cg, err := c.cgroup(); err == nil {
		if err := cg.Destroy(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := os.RemoveAll(c.dir); err != nil {
		errs = append(errs, err)
	}
	if h := c.rec.Spec.Hooks; h != nil {
		if err := runHooks("poststop", h.Poststop, c.ociState(Stopped)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
