// Package spec builds a container's OCI runtime spec from docker's
// configuration (container.Config and HostConfig) as dockerd does:
// docker's capabilities, seccomp profile, masked paths, environment,
// limits and namespaces. It is pure data but for reading user names in
// the container's root; the engine supplies what is its own (the files
// it writes for /etc, volume mounts, the init, a namespace to join), and
// the builder will make its RUN steps' specs with it too.
package spec

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/oci"
	"github.com/tent-project/tent/internal/userdb"
)

// Container is what a container's spec is made of.
type Container struct {
	ID     string
	Config *container.Config
	Host   *container.HostConfig
	// Args is the command: entrypoint and cmd, merged with the image's.
	Args []string
	// Rootfs is where the container's root is mounted, on the host (user
	// names are read there).
	Rootfs string
	// CgroupParent is the engine's, for a container that names none.
	CgroupParent string
	// Init is an init binary to run as PID 1 ("": none).
	Init string
	// PIDNamespace is the namespace file of --pid container:NAME's
	// container; IPCNamespace the same for --ipc container:NAME.
	PIDNamespace, IPCNamespace string
	// Shm is a host directory (a tmpfs the engine keeps) bound at
	// /dev/shm: a shareable IPC container's own, or its donor's.
	Shm string
	// NetNS is a network namespace the engine made and wired for the
	// container (its networks), to join instead of making a new one;
	// "": a new one (loopback only), unless the network mode is host.
	NetNS string
	// Files writes the container's /etc/hostname, /etc/hosts and
	// /etc/resolv.conf for hostname and returns (host path, container
	// path) pairs; nil: none.
	Files func(hostname string) ([][2]string, error)
	// Mounts come last: volumes and binds.
	Mounts []specs.Mount
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// InitDest is where an init is bound in the container, as docker's.
const InitDest = "/sbin/docker-init"

// Build makes the OCI runtime spec of c, as dockerd makes it from the
// same configuration.
func Build(c Container) (*specs.Spec, error) {
	cfg, hc, rootfs := c.Config, c.Host, c.Rootfs
	s := oci.DefaultSpec(false)
	s.Root = &specs.Root{Path: rootfs, Readonly: hc.ReadonlyRootfs}
	s.Hostname = cfg.Hostname
	if s.Hostname == "" {
		s.Hostname = c.ID[:12]
	}
	s.Domainname = cfg.Domainname

	p := s.Process
	p.Terminal = cfg.Tty
	p.Args = slices.Clone(c.Args)
	if c.Init != "" {
		// As docker: the init bound read-only at /sbin/docker-init, running
		// the command as its child, reaping zombies and passing signals.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: InitDest, Type: "bind", Source: c.Init, Options: []string{"bind", "ro"}})
		p.Args = append([]string{InitDest, "--"}, p.Args...)
	}
	p.Env = containerEnv(cfg, s.Hostname)
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	user, err := userdb.ResolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	added, err := userdb.ResolveGroups(rootfs, hc.GroupAdd)
	if err != nil {
		return nil, err
	}
	for _, g := range added {
		if g != user.GID && !slices.Contains(user.AdditionalGids, g) {
			user.AdditionalGids = append(user.AdditionalGids, g)
		}
	}
	p.User = user
	sec, err := ParseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	p.NoNewPrivileges = sec.NoNewPrivileges
	if sec.AppArmor != "unconfined" && !hc.Privileged {
		p.ApparmorProfile = sec.AppArmor // only set where the host has AppArmor
	}
	p.Rlimits = []specs.POSIXRlimit{nofileLimit()}
	for _, u := range hc.Ulimits {
		p.Rlimits = setRlimit(p.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_" + strings.ToUpper(u.Name), Hard: uint64(u.Hard), Soft: uint64(u.Soft)})
	}
	if hc.OomScoreAdj != 0 {
		p.OOMScoreAdj = &hc.OomScoreAdj
	}

	capList, err := capabilities(hc)
	if err != nil {
		return nil, err
	}
	p.Capabilities = &specs.LinuxCapabilities{Bounding: capList, Effective: capList, Permitted: capList}

	lx := s.Linux
	lx.CgroupsPath = filepath.Join(orDefault(hc.CgroupParent, c.CgroupParent), c.ID)
	if hc.NetworkMode.IsHost() {
		lx.Namespaces = slices.DeleteFunc(lx.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.NetworkNamespace || n.Type == specs.UTSNamespace && cfg.Hostname == ""
		})
		if cfg.Hostname == "" {
			s.Hostname = ""
		}
	}
	if c.NetNS != "" && !hc.NetworkMode.IsHost() {
		for i, n := range lx.Namespaces {
			if n.Type == specs.NetworkNamespace {
				lx.Namespaces[i].Path = c.NetNS
			}
		}
	}
	if err := shareNamespaces(s, hc, c); err != nil {
		return nil, err
	}
	if hc.CgroupnsMode.IsHost() {
		lx.Namespaces = slices.DeleteFunc(lx.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace })
	}
	if len(hc.Annotations) > 0 {
		s.Annotations = hc.Annotations
	}
	lx.Sysctl = sysctls(hc)
	if lx.Resources, err = resources(hc); err != nil {
		return nil, err
	}
	if err := devices(lx, hc); err != nil {
		return nil, err
	}
	if hc.MaskedPaths != nil { // [] from the docker CLI's --security-opt systempaths=unconfined
		lx.MaskedPaths = hc.MaskedPaths
	}
	if hc.ReadonlyPaths != nil {
		lx.ReadonlyPaths = hc.ReadonlyPaths
	}
	if hc.Privileged {
		lx.MaskedPaths, lx.ReadonlyPaths, lx.Seccomp = nil, nil, nil
		lx.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		lx.Devices = hostDevTree()
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" })
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime"}})
	} else if lx.Seccomp, err = seccompProfile(sec.Seccomp, capList); err != nil {
		return nil, err
	}

	if hc.ShmSize > 0 {
		for i, m := range s.Mounts {
			if m.Destination == "/dev/shm" && m.Type == "tmpfs" { // a shared one has its size already
				s.Mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") }),
					"size="+strconv.FormatInt(hc.ShmSize, 10))
			}
		}
	}
	if c.Files != nil {
		files, err := c.Files(s.Hostname)
		if err != nil {
			return nil, err
		}
		for _, f := range files {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: f[1], Type: "bind", Source: f[0], Options: []string{"rbind", "rprivate"}})
		}
	}
	for dst, opts := range hc.Tmpfs {
		o := []string{"nosuid", "nodev", "noexec"}
		if opts != "" {
			o = append(o, strings.Split(opts, ",")...)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: o})
	}
	s.Mounts = append(s.Mounts, c.Mounts...)
	return s, nil
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

// containerEnv is the process environment: PATH if the image has none,
// HOSTNAME, TERM with a terminal, then the merged config's variables.
func containerEnv(cfg *container.Config, hostname string) []string {
	env := []string{defaultPath, "HOSTNAME=" + hostname}
	if cfg.Tty {
		env = append(env, "TERM=xterm")
	}
	return MergeEnv(env, cfg.Env)
}

// MergeEnv overlays the user's variables on the image's, by name.
func MergeEnv(base, over []string) []string {
	out := append([]string(nil), base...)
	for _, kv := range over {
		k, _, _ := strings.Cut(kv, "=")
		replaced := false
		for i, e := range out {
			if ek, _, _ := strings.Cut(e, "="); ek == k {
				out[i], replaced = kv, true
				break
			}
		}
		if !replaced {
			out = append(out, kv)
		}
	}
	return out
}

func setRlimit(list []specs.POSIXRlimit, r specs.POSIXRlimit) []specs.POSIXRlimit {
	for i := range list {
		if list[i].Type == r.Type {
			list[i] = r
			return list
		}
	}
	return append(list, r)
}

// resources turns the host config's limits into OCI resources.
func resources(hc *container.HostConfig) (*specs.LinuxResources, error) {
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	swappiness := hc.MemorySwappiness != nil && *hc.MemorySwappiness >= 0
	noOOMKill := hc.OomKillDisable != nil && *hc.OomKillDisable
	if hc.Memory > 0 || hc.MemorySwap != 0 || hc.MemoryReservation > 0 || swappiness || noOOMKill {
		r.Memory = &specs.LinuxMemory{}
		if hc.Memory > 0 {
			r.Memory.Limit = &hc.Memory
			swap := hc.Memory * 2 // docker's default: as much swap as memory
			if hc.MemorySwap != 0 {
				swap = hc.MemorySwap
			}
			r.Memory.Swap = &swap
		}
		if hc.MemoryReservation > 0 {
			r.Memory.Reservation = &hc.MemoryReservation
		}
		if swappiness {
			v := uint64(*hc.MemorySwappiness)
			r.Memory.Swappiness = &v
		}
		if noOOMKill {
			r.Memory.DisableOOMKiller = &noOOMKill
		}
	}
	cpu := &specs.LinuxCPU{}
	if hc.NanoCPUs > 0 {
		period := uint64(100000)
		quota := hc.NanoCPUs * int64(period) / 1e9
		cpu.Period, cpu.Quota = &period, &quota
	}
	if hc.CPUQuota > 0 {
		cpu.Quota = &hc.CPUQuota
	}
	if hc.CPUPeriod > 0 {
		p := uint64(hc.CPUPeriod)
		cpu.Period = &p
	}
	if hc.CPUShares > 0 {
		sh := uint64(hc.CPUShares)
		cpu.Shares = &sh
	}
	if hc.CPURealtimePeriod > 0 {
		p := uint64(hc.CPURealtimePeriod)
		cpu.RealtimePeriod = &p
	}
	if hc.CPURealtimeRuntime > 0 {
		cpu.RealtimeRuntime = &hc.CPURealtimeRuntime
	}
	cpu.Cpus, cpu.Mems = hc.CpusetCpus, hc.CpusetMems
	if *cpu != (specs.LinuxCPU{}) {
		r.CPU = cpu
	}
	if hc.PidsLimit != nil && *hc.PidsLimit != 0 {
		limit := *hc.PidsLimit
		r.Pids = &specs.LinuxPids{Limit: &limit}
	}
	b := &specs.LinuxBlockIO{}
	if hc.BlkioWeight > 0 {
		w := hc.BlkioWeight
		b.Weight = &w
	}
	if err := blkioDevices(b, hc); err != nil {
		return nil, err
	}
	if b.Weight != nil || len(b.WeightDevice)+len(b.ThrottleReadBpsDevice)+len(b.ThrottleWriteBpsDevice)+
		len(b.ThrottleReadIOPSDevice)+len(b.ThrottleWriteIOPSDevice) > 0 {
		r.BlockIO = b
	}
	return r, nil
}

// UpdateResources are the limits of hc for a running container's cgroup
// (docker update): its devices left alone, a pids limit taken off as
// "max".
func UpdateResources(hc *container.HostConfig) (*specs.LinuxResources, error) {
	r, err := resources(hc)
	if err != nil {
		return nil, err
	}
	r.Devices = nil
	if hc.PidsLimit != nil && *hc.PidsLimit <= 0 {
		unlimited := int64(-1)
		r.Pids = &specs.LinuxPids{Limit: &unlimited}
	}
	return r, nil
}

// nofileLimit is the containers' default open-file limit: the daemon's own
// hard limit (raising it would need CAP_SYS_RESOURCE, which the host may
// withhold), capped at docker's 1048576.
func nofileLimit() specs.POSIXRlimit {
	n := uint64(1048576)
	var rl syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl) == nil && rl.Max < n {
		n = rl.Max
	}
	return specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Hard: n, Soft: n}
}

// shareNamespaces applies --pid, --ipc and --uts as docker does: "host"
// leaves the namespace to the host's (with the host's IPC namespace the
// container gets the host's /dev/shm too), --pid container:NAME and --ipc
// container:NAME join a running container's namespace (its namespace
// file, found by the engine; with the donor's /dev/shm), "shareable" has
// a /dev/shm the engine keeps outside the container (c.Shm) for others to
// share, --ipc none has no /dev/shm.
func shareNamespaces(s *specs.Spec, hc *container.HostConfig, c Container) error {
	for _, m := range []struct {
		typ  specs.LinuxNamespaceType
		what string // docker's word in errors
		mode string
	}{
		{specs.PIDNamespace, "PID", string(hc.PidMode)},
		{specs.IPCNamespace, "IPC", string(hc.IpcMode)},
		{specs.UTSNamespace, "UTS", string(hc.UTSMode)},
	} {
		other, isContainer := strings.CutPrefix(m.mode, "container:")
		switch {
		case m.typ == specs.IPCNamespace && m.mode == "shareable" && c.Shm != "":
			bindShm(s, c.Shm)
		case m.mode == "" || m.typ == specs.IPCNamespace && (m.mode == "private" || m.mode == "shareable"):
		case m.typ == specs.IPCNamespace && m.mode == "none":
			s.Mounts = slices.DeleteFunc(s.Mounts, func(mt specs.Mount) bool { return mt.Destination == "/dev/shm" })
		case m.mode == "host":
			s.Linux.Namespaces = slices.DeleteFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == m.typ })
			switch m.typ {
			case specs.UTSNamespace:
				s.Hostname = "" // the host's name stays
			case specs.IPCNamespace:
				bindShm(s, "/dev/shm")
			}
		case isContainer && other != "" && (m.typ == specs.PIDNamespace || m.typ == specs.IPCNamespace):
			ns := c.PIDNamespace
			if m.typ == specs.IPCNamespace {
				ns = c.IPCNamespace
				if c.Shm != "" {
					bindShm(s, c.Shm)
				}
			}
			if ns == "" {
				return fmt.Errorf("--%s container:%s: no namespace to join: %w", strings.ToLower(m.what), other, errdefs.ErrInvalidArgument)
			}
			for i, n := range s.Linux.Namespaces {
				if n.Type == m.typ {
					s.Linux.Namespaces[i].Path = ns
				}
			}
		default:
			return fmt.Errorf("invalid %s mode: %s: %w", m.what, m.mode, errdefs.ErrInvalidArgument)
		}
	}
	return nil
}

// bindShm makes the container's /dev/shm a bind of src.
func bindShm(s *specs.Spec, src string) {
	for i, m := range s.Mounts {
		if m.Destination == "/dev/shm" {
			s.Mounts[i] = specs.Mount{Destination: "/dev/shm", Type: "bind", Source: src, Options: []string{"rbind", "nosuid", "noexec", "nodev"}}
		}
	}
}

// sysctls are a container's: dockerd's defaults for one with a network
// namespace of its own (not the host's, not another container's), then
// the user's --sysctl over them. A user in the container may bind any
// port and ping (an ICMP socket without CAP_NET_RAW), and IPv6 is off in
// the namespace unless a network of the container has it (the engine
// turns it on for lo and that network's interface) or the user turns it
// on (--sysctl net.ipv6.conf.all.disable_ipv6=0, as compose files do):
// as dockerd 20.10 does; an interface without IPv6 has no link-local
// address to make, announce and check for duplicates. Each default is
// given only where the host's kernel has it.
func sysctls(hc *container.HostConfig) map[string]string {
	out := map[string]string{}
	if !hc.NetworkMode.IsHost() && !hc.NetworkMode.IsContainer() {
		if hostSysctls.unprivilegedPorts {
			out["net.ipv4.ip_unprivileged_port_start"] = "0"
		}
		out["net.ipv4.ping_group_range"] = "0 2147483647"
		_, all := hc.Sysctls["net.ipv6.conf.all.disable_ipv6"]
		_, dflt := hc.Sysctls["net.ipv6.conf.default.disable_ipv6"]
		if hostSysctls.ipv6 && !all && !dflt {
			out["net.ipv6.conf.all.disable_ipv6"] = "1"
			out["net.ipv6.conf.default.disable_ipv6"] = "1"
		}
	}
	maps.Copy(out, hc.Sysctls)
	if len(out) == 0 {
		return nil
	}
	return out
}

// hostSysctls: what of dockerd's defaults this kernel has (read once).
var hostSysctls = func() (h struct{ unprivilegedPorts, ipv6 bool }) {
	_, err := os.Stat("/proc/sys/net/ipv4/ip_unprivileged_port_start") // Linux 4.11
	h.unprivilegedPorts = err == nil
	_, err = os.Stat("/proc/sys/net/ipv6/conf/default/disable_ipv6") // not without IPv6 (ipv6.disable=1)
	h.ipv6 = err == nil
	return h
}()
