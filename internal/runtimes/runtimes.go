// Package runtimes is the daemon's set of task backends by name, as
// dockerd's runtimes: tent's own (the process backend, internal/task/proc,
// also answering to "runc"), tent-vm where the host can run VMs
// (internal/task/vmtask), and the OCI runtime binaries of --add-runtime
// (internal/task/ocibin). It decides which one a container runs with
// (HostConfig.Runtime, --isolation vm, the default) and lists them in
// /info.
package runtimes

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/ocibin"
	"github.com/tent-project/tent/internal/task/proc"
	"github.com/tent-project/tent/internal/task/vmtask"
	"github.com/tent-project/tent/internal/vm"
)

// Own is the name of tent's own runtime (the process backend), which
// containers run with unless they or the daemon's default name another.
const Own = "tent"

// RuncAlias names tent's own runtime too: it is a drop-in for runc, and
// compose files and scripts written for dockerd ask for "runc".
const RuncAlias = "runc"

// isolationVM is the isolation of a VM container (--isolation vm).
const isolationVM = "vm"

// Config is what the set is made of.
type Config struct {
	// Exe is the binary that monitors and container inits run from.
	Exe string
	// ExecRoot holds the runtimes' state (runtime/, runtimes/NAME/),
	// DataRoot the VM disks (vm/).
	ExecRoot, DataRoot string
	// Binaries are OCI runtime binaries by name (--add-runtime), Default
	// the runtime of containers that name none ("": Own).
	Binaries map[string]ocibin.Binary
	Default  string
	Log      *slog.Logger
	// NoVMTemplates: every VM boots (vm.Host.NoTemplates).
	NoVMTemplates bool
	// CgroupParent is where containers' cgroups go by default (spare
	// inits wait in a cgroup there: proc.New).
	CgroupParent string
}

// Set is the daemon's runtimes.
type Set struct {
	cfg    Config
	byName map[string]task.Runtime
	def    string
	vmHost *vm.Host // nil: no VM runtime, for the reason vmErr gives
	vmErr  error
}

// Open makes the runtimes: tent's own, tent-vm if this host has what VMs
// need (its KVM probe starts in the background), and the binaries.
func Open(cfg Config) (*Set, error) {
	// Monitors, container inits and exec helpers all run from one sealed
	// in-memory copy of the monitor binary (internal/task/proc).
	own, err := proc.New(cfg.Exe, filepath.Join(cfg.ExecRoot, "runtime"), cfg.CgroupParent, cfg.Log)
	if err != nil {
		return nil, err
	}
	s := &Set{cfg: cfg, byName: map[string]task.Runtime{Own: own}, def: Own}
	if host, err := findVMHost(cfg); err != nil {
		s.vmErr = err
		cfg.Log.Info("VM isolation is not available", "reason", err)
	} else {
		s.vmHost = host
		host.Log, host.NoTemplates = cfg.Log, cfg.NoVMTemplates
		host.StartProbe() // KVM or TCG: found before the first VM needs it
		s.byName[vmtask.Name] = vmtask.New(cfg.Exe, host)
	}
	if err := s.addBinaries(own.MonitorExe()); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// findVMHost finds what the VM isolation mode needs on this host: the
// guest kernel where scripts/guest-kernel.sh puts it, tent-agent next to
// the monitor binary (a build tree) or there (make install).
func findVMHost(cfg Config) (*vm.Host, error) {
	agent := filepath.Join(filepath.Dir(cfg.Exe), "tent-agent")
	if _, err := os.Stat(agent); err != nil {
		agent = filepath.Join(vm.DefaultGuestDir, "tent-agent")
	}
	return vm.NewHost(vm.DefaultGuestDir, agent, filepath.Join(cfg.DataRoot, "vm"))
}

// addBinaries adds the configured runtime binaries (their monitors run
// from monitorExe) and checks the default runtime.
func (s *Set) addBinaries(monitorExe string) error {
	for name, b := range s.cfg.Binaries {
		if _, taken := s.byName[name]; taken || name == RuncAlias || name == vmtask.Name {
			return fmt.Errorf("runtime name %q is reserved: %w", name, errdefs.ErrInvalidArgument)
		}
		rt, err := ocibin.New(b, filepath.Join(s.cfg.ExecRoot, "runtimes", name), monitorExe)
		if err != nil {
			return fmt.Errorf("runtime %s: %w", name, err)
		}
		s.byName[name] = rt
	}
	if name := s.cfg.Default; name != "" {
		if _, err := s.Get(name); err != nil {
			return fmt.Errorf("default runtime: %w", err)
		}
		s.def = name
	}
	return nil
}

// Close releases the runtimes that hold something.
func (s *Set) Close() error {
	var errs []error
	for _, rt := range s.byName {
		if c, ok := rt.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	s.byName = nil
	return errors.Join(errs...)
}

// Get is the runtime of a container's HostConfig.Runtime.
func (s *Set) Get(name string) (task.Runtime, error) {
	if name == "" || name == RuncAlias { // "": a record from before runtimes were recorded
		name = Own
	}
	rt, ok := s.byName[name]
	if !ok {
		return nil, fmt.Errorf("unknown or invalid runtime name: %s: %w", name, errdefs.ErrInvalidArgument)
	}
	return rt, nil
}

// VM is the VM runtime if name is it (nil otherwise).
func (s *Set) VM(name string) *vmtask.Runtime {
	vm, _ := s.byName[name].(*vmtask.Runtime)
	return vm
}

// All are the runtimes.
func (s *Set) All() []task.Runtime {
	out := make([]task.Runtime, 0, len(s.byName))
	for _, rt := range s.byName {
		out = append(out, rt)
	}
	return out
}

// Select picks a new container's runtime into hc.Runtime: --runtime, or
// tent-vm for --isolation vm, or the default; it must be one the daemon
// has.
func (s *Set) Select(hc *container.HostConfig) error {
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
		hc.Runtime = s.def
	}
	if hc.Runtime == vmtask.Name {
		hc.Isolation = isolationVM
		if s.vmErr != nil {
			return fmt.Errorf("%w: %w", s.vmErr, errdefs.ErrUnavailable)
		}
	}
	_, err := s.Get(hc.Runtime)
	return err
}

// Info lists the runtimes in /info, as dockerd: each with its path and
// arguments, the VM runtime with its accelerator (and a warning when it
// emulates).
func (s *Set) Info(info *system.Info) {
	info.DefaultRuntime = s.def
	if info.Runtimes == nil {
		info.Runtimes = map[string]system.RuntimeWithStatus{}
	}
	for name := range s.byName {
		r := system.Runtime{Path: s.cfg.Exe}
		if b, ok := s.cfg.Binaries[name]; ok {
			r = system.Runtime{Path: b.Path, Args: b.Args}
		}
		info.Runtimes[name] = system.RuntimeWithStatus{Runtime: r}
	}
	info.Runtimes[RuncAlias] = info.Runtimes[Own]
	if s.vmHost != nil {
		accel, note := s.vmHost.Accel()
		rt := info.Runtimes[vmtask.Name]
		rt.Status = map[string]string{"accelerator": accel}
		info.Runtimes[vmtask.Name] = rt
		if accel != "kvm" {
			info.Warnings = append(info.Warnings, "WARNING: VM isolation (--isolation vm) runs under TCG emulation, slowly: "+note)
		}
	}
}
