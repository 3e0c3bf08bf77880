package daemon

import (
	"net/netip"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/imagesvc"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/task/vmtask"
	"golang.org/x/sys/unix"
)

// defaultRuntime is the name of tent's own runtime (the process backend,
// internal/task/proc), which containers run with unless HostConfig.Runtime
// names another of d.runtimes.
const defaultRuntime = "tent"

// runcAlias names the default runtime too: tent's runtime is a drop-in for
// runc, and compose files and scripts written for dockerd ask for "runc".
const runcAlias = "runc"

// Info describes the engine and host, as GET /info.
func (d *Daemon) Info() (*system.Info, error) {
	info := &system.Info{
		Driver: d.driver, LoggingDriver: d.logDriver(), CgroupDriver: "cgroupfs", CgroupVersion: "1",
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
	info.Runtimes[runcAlias] = info.Runtimes[defaultRuntime]
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
	d.hostInfo(info)
	return info, nil
}

// hostInfo fills in what dockerd tells of the host and the engine's
// parts: drivers, plugins, registries, swarm (never active here).
func (d *Daemon) hostInfo(info *system.Info) {
	info.OSVersion = osRelease("VERSION_ID")
	info.OomKillDisable = !cgroups.Unified() // memory.oom_control is v1's
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		info.NFd = len(fds)
	}
	info.DriverStatus = [][2]string{{"Backing Filesystem", backingFS(d.cfg.DataRoot)}}
	if d.driver == imagesvc.OverlayDriver {
		info.DriverStatus = append(info.DriverStatus, [2]string{"Supports d_type", "true"}, [2]string{"Native Overlay Diff", "true"}, [2]string{"userxattr", "false"})
	}
	info.Plugins = system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "null"}, Log: logfile.Drivers}
	info.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	rc := &registry.ServiceConfig{InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		IndexConfigs: map[string]*registry.IndexInfo{"docker.io": {Name: "docker.io", Mirrors: []string{}, Secure: true, Official: true}}, Mirrors: []string{}}
	for _, r := range d.cfg.InsecureRegistries {
		if p, err := netip.ParsePrefix(r); err == nil {
			rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p)
		} else {
			rc.IndexConfigs[r] = &registry.IndexInfo{Name: r, Mirrors: []string{}}
		}
	}
	info.RegistryConfig = rc
}

// backingFS names the file system under dir as dockerd's DriverStatus.
func backingFS(dir string) string {
	var st unix.Statfs_t
	if unix.Statfs(dir, &st) != nil {
		return "unknown"
	}
	switch st.Type {
	case unix.EXT4_SUPER_MAGIC:
		return "extfs"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	}
	return "unknown"
}

func osName() string {
	if name := osRelease("PRETTY_NAME"); name != "" {
		return name
	}
	return "Linux"
}

// osRelease is a field of /etc/os-release ("" if it has none).
func osRelease(key string) string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+"="); ok {
			return strings.Trim(v, `"`)
		}
	}
	return ""
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
