// Package sysinfo tells what GET /info tells of the host: the machine,
// kernel, OS, cgroups, storage, plugins and registries, as dockerd does.
// The daemon adds its own counts and runtimes.
package sysinfo

import (
	"net/netip"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/moby/moby/api/types/registry"
	"github.com/moby/moby/api/types/swarm"
	"github.com/moby/moby/api/types/system"
	"github.com/tent-project/tent/internal/cgroups"
	"golang.org/x/sys/unix"
)

// Engine is what Info tells of the engine's configuration.
type Engine struct {
	DataRoot string
	Driver   string // the storage driver's name
	Overlay  bool   // it is overlayfs
	// LogDriver is the default log driver; LogDrivers those there are.
	LogDriver  string
	LogDrivers []string
	// Insecure are the insecure registries (host[:port] or CIDR).
	Insecure []string
}

// Info is what GET /info tells of the host and the engine's parts, as
// dockerd does: the machine, its kernel and OS, cgroups, the storage
// driver, plugins, registries, swarm (never active here).
func Info(e Engine) *system.Info {
	info := &system.Info{
		Driver: e.Driver, LoggingDriver: e.LogDriver, CgroupDriver: "cgroupfs", CgroupVersion: "1",
		OSType: "linux", Architecture: runtime.GOARCH, NCPU: runtime.NumCPU(),
		DockerRootDir: e.DataRoot, Isolation: "",
		MemoryLimit: true, SwapLimit: true, CPUCfsPeriod: true, CPUCfsQuota: true, CPUShares: true,
		CPUSet: true, PidsLimit: true, IPv4Forwarding: true, NGoroutines: runtime.NumGoroutine(),
		SystemTime: time.Now().Format(time.RFC3339Nano), IndexServerAddress: "https://index.docker.io/v1/",
		SecurityOptions: []string{"name=seccomp,profile=builtin"},
		Runtimes:        map[string]system.RuntimeWithStatus{},
		Labels:          []string{}, Warnings: []string{},
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

	info.OSVersion = osRelease("VERSION_ID")
	info.OomKillDisable = !cgroups.Unified() // memory.oom_control is v1's
	if fds, err := os.ReadDir("/proc/self/fd"); err == nil {
		info.NFd = len(fds)
	}
	info.DriverStatus = [][2]string{{"Backing Filesystem", backingFS(e.DataRoot)}}
	if e.Overlay {
		info.DriverStatus = append(info.DriverStatus, [2]string{"Supports d_type", "true"}, [2]string{"Native Overlay Diff", "true"}, [2]string{"userxattr", "false"})
	}
	info.Plugins = system.PluginsInfo{Volume: []string{"local"}, Network: []string{"bridge", "host", "null"}, Log: e.LogDrivers}
	info.Swarm = swarm.Info{LocalNodeState: swarm.LocalNodeStateInactive}
	rc := &registry.ServiceConfig{InsecureRegistryCIDRs: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		IndexConfigs: map[string]*registry.IndexInfo{"docker.io": {Name: "docker.io", Mirrors: []string{}, Secure: true, Official: true}}, Mirrors: []string{}}
	for _, r := range e.Insecure {
		if p, err := netip.ParsePrefix(r); err == nil {
			rc.InsecureRegistryCIDRs = append(rc.InsecureRegistryCIDRs, p)
		} else {
			rc.IndexConfigs[r] = &registry.IndexInfo{Name: r, Mirrors: []string{}}
		}
	}
	info.RegistryConfig = rc
	return info
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
