package daemon

import (
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/task/vmtask"
	"golang.org/x/sys/unix"
)

// defaultRuntime is the name of tent's own runtime (the process backend,
// internal/task/proc), which containers run with unless HostConfig.Runtime
// names another of d.runtimes.
const defaultRuntime = "tent"

// Info describes the engine and host, as GET /info.
func (d *Daemon) Info() (*system.Info, error) {
	info := &system.Info{
		Driver: d.driver, LoggingDriver: "json-file", CgroupDriver: "cgroupfs", CgroupVersion: "1",
		OSType: "linux", Architecture: goruntime.GOARCH, NCPU: goruntime.NumCPU(),
		DockerRootDir: d.cfg.DataRoot, DefaultRuntime: defaultRuntime, Isolation: "",
		MemoryLimit: true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true,
		CPUSet: true, PidsLimit: true, IPv4Forwarding: true, NGoroutines: goruntime.NumGoroutine(),
		SystemTime: time.Now().Format(time.RFC3339Nano), IndexServerAddress: "https://index.docker.io/v1/",
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
		Runtimes:        map[string]system.RuntimeWithStatus{},
		Labels:          []string{}, Warnings: []string{},
	}
	for name := range d.runtimes {
		info.Runtimes[name] = system.RuntimeWithStatus{Runtime: system.Runtime{Path: d.cfg.Exe}}
	}
	if d.vmHost != nil {
		accel, note := d.vmHost.Accel()
		rt := info.Runtimes[vmtask.Name]
		rt.Status = map[string]string{"accelerator": accel}
		info.Runtimes[vmtask.Name] = rt
		if accel != "kvm" {
			info.Warnings = append(info.Warnings, "WARNING: VM isolation (--isolation vm) runs under TCG emulation, slowly: "+note)
		}
	}
	if d.cfg.InitPath != "" {
		info.InitBinary = filepath.Base(d.cfg.InitPath)
	}
	if cgroups.Unified() {
		info.CgroupVersion = "2"
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		info.KernelVersion = unix.ByteSliceToString(u.Release[:])
		info.Architecture = unix.ByteSliceToString(u.Machine[:]) // "x86_64", as dockerd
	}
	info.Name, _ = os.Hostname()
	info.OperatingSystem = osName()
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) == nil {
		info.MemTotal = int64(si.Totalram) * int64(si.Unit)
	}
	for _, c := range d.all() {
		c.mu.Lock()
		switch c.State.Status {
		case container.StateRunning:
			info.ContainersRunning++
		case container.StatePaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
		c.mu.Unlock()
		info.Containers++
	}
	imgs, err := d.images.List()
	if err != nil {
		return nil, err
	}
	info.Images = len(imgs)
	info.ID = d.engineID()
	return info, nil
}

func osName() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return "Linux"
}

// engineID is a stable identity of this data root, made on first use.
func (d *Daemon) engineID() string {
	p := filepath.Join(d.cfg.DataRoot, "engine-id")
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b))
	}
	id := newID()[:32]
	os.WriteFile(p, []byte(id+"\n"), 0o600)
	return id
}
