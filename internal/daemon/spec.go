package daemon

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/oci"
	"github.com/tent-project/tent/internal/seccomp"
)

// defaultCaps are the capabilities docker gives a container.
var defaultCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
	"CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// spec makes the OCI runtime spec of a container whose root file system
// is mounted at rootfs.
func (d *Daemon) spec(c *ctr, rootfs string) (*specs.Spec, error) {
	cfg, hc := c.Config, c.HostConfig
	s := oci.DefaultSpec(false)
	s.Root = &specs.Root{Path: rootfs, Readonly: hc.ReadonlyRootfs}
	s.Hostname = cfg.Hostname
	if s.Hostname == "" {
		s.Hostname = c.ID[:12]
	}
	s.Domainname = cfg.Domainname

	p := s.Process
	p.Terminal = cfg.Tty
	p.Args = append([]string{c.Path}, c.Args...)
	if d.useInit(hc) {
		// As docker: the init bound read-only at /sbin/docker-init, running
		// the command as its child, reaping zombies and passing signals.
		s.Mounts = append(s.Mounts, specs.Mount{Destination: initDest, Type: "bind", Source: d.cfg.InitPath, Options: []string{"bind", "ro"}})
		p.Args = append([]string{initDest, "--"}, p.Args...)
	}
	p.Env = containerEnv(cfg, s.Hostname)
	p.Cwd = cfg.WorkingDir
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	user, err := resolveUser(rootfs, cfg.User)
	if err != nil {
		return nil, err
	}
	p.User = user
	sec, err := parseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return nil, err
	}
	p.NoNewPrivileges = sec.noNewPrivileges
	if sec.apparmor != "unconfined" && !hc.Privileged {
		p.ApparmorProfile = sec.apparmor // only set where the host has AppArmor
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
	lx.CgroupsPath = filepath.Join(orDefault(hc.CgroupParent, d.cfg.CgroupParent), c.ID)
	if hc.NetworkMode.IsHost() {
		lx.Namespaces = slices.DeleteFunc(lx.Namespaces, func(n specs.LinuxNamespace) bool {
			return n.Type == specs.NetworkNamespace || n.Type == specs.UTSNamespace && cfg.Hostname == ""
		})
		if cfg.Hostname == "" {
			s.Hostname = ""
		}
	}
	if err := d.shareNamespaces(s, hc); err != nil {
		return nil, err
	}
	lx.Sysctl = hc.Sysctls
	lx.Resources = resources(hc)
	if hc.Privileged {
		lx.MaskedPaths, lx.ReadonlyPaths, lx.Seccomp = nil, nil, nil
		lx.Resources.Devices = []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}}
		s.Mounts = slices.DeleteFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup" })
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev"}},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime"}})
	} else if lx.Seccomp, err = seccompProfile(sec.seccomp, capList); err != nil {
		return nil, err
	}

	if hc.ShmSize > 0 {
		for i, m := range s.Mounts {
			if m.Destination == "/dev/shm" {
				s.Mounts[i].Options = append(slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return strings.HasPrefix(o, "size=") }),
					"size="+strconv.FormatInt(hc.ShmSize, 10))
			}
		}
	}
	files, err := d.writeEtcFiles(c, s.Hostname, hc.NetworkMode.IsHost())
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: f[1], Type: "bind", Source: f[0], Options: []string{"rbind", "rprivate"}})
	}
	for dst, opts := range hc.Tmpfs {
		o := []string{"nosuid", "nodev", "noexec"}
		if opts != "" {
			o = append(o, strings.Split(opts, ",")...)
		}
		s.Mounts = append(s.Mounts, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: o})
	}
	binds, err := d.specMounts(c)
	if err != nil {
		return nil, err
	}
	s.Mounts = append(s.Mounts, binds...)
	return s, nil
}

const initDest = "/sbin/docker-init"

// useInit tells whether a container runs an init as PID 1: its own
// choice (--init, --init=false), else the daemon's --init.
func (d *Daemon) useInit(hc *container.HostConfig) bool {
	if hc.Init != nil {
		return *hc.Init
	}
	return d.cfg.Init
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
	return mergeEnv(env, cfg.Env)
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

// capabilities applies --privileged, --cap-add and --cap-drop to docker's
// default set. Names may omit CAP_ and may be "ALL".
func capabilities(hc *container.HostConfig) ([]string, error) {
	if hc.Privileged {
		return caps.All(), nil
	}
	norm := func(list []string) ([]string, error) {
		var out []string
		for _, n := range list {
			n = strings.ToUpper(n)
			if n == "ALL" {
				out = append(out, "ALL")
				continue
			}
			if !strings.HasPrefix(n, "CAP_") {
				n = "CAP_" + n
			}
			if _, err := caps.Parse(n); err != nil {
				return nil, fmt.Errorf("unknown capability: %q: %w", n, errdefs.ErrInvalidArgument)
			}
			out = append(out, n)
		}
		return out, nil
	}
	add, err := norm(hc.CapAdd)
	if err != nil {
		return nil, err
	}
	drop, err := norm(hc.CapDrop)
	if err != nil {
		return nil, err
	}
	set := slices.Clone(defaultCaps)
	if slices.Contains(drop, "ALL") {
		set = nil
	}
	set = slices.DeleteFunc(set, func(c string) bool { return slices.Contains(drop, c) })
	if slices.Contains(add, "ALL") {
		return caps.All(), nil
	}
	for _, c := range add {
		if !slices.Contains(set, c) {
			set = append(set, c)
		}
	}
	return set, nil
}

// resources turns the host config's limits into OCI resources.
func resources(hc *container.HostConfig) *specs.LinuxResources {
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	if hc.Memory > 0 || hc.MemorySwap != 0 || hc.MemoryReservation > 0 {
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
	cpu.Cpus, cpu.Mems = hc.CpusetCpus, hc.CpusetMems
	if *cpu != (specs.LinuxCPU{}) {
		r.CPU = cpu
	}
	if hc.PidsLimit != nil && *hc.PidsLimit != 0 {
		r.Pids = &specs.LinuxPids{Limit: *hc.PidsLimit}
	}
	return r
}

// seccompProfile picks the seccomp filter: docker's default, none
// ("seccomp=unconfined"), or a docker-format profile given inline (the
// docker CLI reads the file and sends its content).
func seccompProfile(profile string, capList []string) (*specs.LinuxSeccomp, error) {
	switch profile {
	case "":
		return seccomp.DefaultProfile(capList), nil
	case "unconfined":
		return nil, nil
	}
	return parseDockerSeccomp([]byte(profile), capList)
}

// securityOpts are a container's --security-opt settings.
type securityOpts struct {
	noNewPrivileges bool
	seccomp         string // "" (the default profile), "unconfined" or a profile's JSON
	apparmor        string // "" or a profile name; "unconfined"
}

// parseSecurityOpts reads --security-opt values as dockerd does (KEY=VALUE,
// or the older KEY:VALUE), and refuses what this host cannot honour
// rather than ignoring it: an AppArmor profile where AppArmor is off,
// SELinux labels (but label=disable, which asks for none).
func parseSecurityOpts(opts []string) (securityOpts, error) {
	var o securityOpts
	for _, opt := range opts {
		k, v, ok := strings.Cut(opt, "=")
		if !ok {
			k, v, ok = strings.Cut(opt, ":")
		}
		if !ok && k != "no-new-privileges" {
			return o, fmt.Errorf("invalid --security-opt 1: %q: %w", opt, errdefs.ErrInvalidArgument)
		}
		switch k {
		case "no-new-privileges":
			o.noNewPrivileges = true
			if ok {
				b, err := strconv.ParseBool(v)
				if err != nil {
					return o, fmt.Errorf("invalid --security-opt 2: %q: %w", opt, errdefs.ErrInvalidArgument)
				}
				o.noNewPrivileges = b
			}
		case "seccomp":
			o.seccomp = v
		case "apparmor":
			if v != "unconfined" && !apparmorEnabled() {
				return o, fmt.Errorf("--security-opt apparmor=%s: AppArmor is not enabled on this host: %w", v, errdefs.ErrInvalidArgument)
			}
			o.apparmor = v
		case "label":
			if v != "disable" {
				return o, fmt.Errorf("--security-opt label=%s: SELinux labels are not supported (this host has no SELinux): %w", v, errdefs.ErrNotImplemented)
			}
		default:
			return o, fmt.Errorf("invalid --security-opt 2: %q: %w", opt, errdefs.ErrInvalidArgument)
		}
	}
	return o, nil
}

// apparmorEnabled reports whether the kernel enforces AppArmor.
func apparmorEnabled() bool {
	b, err := os.ReadFile("/sys/module/apparmor/parameters/enabled")
	return err == nil && len(b) > 0 && b[0] == 'Y'
}

// dockerSeccomp is docker's seccomp profile format.
type dockerSeccomp struct {
	DefaultAction   specs.LinuxSeccompAction `json:"defaultAction"`
	DefaultErrnoRet *uint                    `json:"defaultErrnoRet,omitempty"`
	Architectures   []specs.Arch             `json:"architectures,omitempty"`
	ArchMap         []struct {
		Arch      specs.Arch   `json:"architecture"`
		SubArches []specs.Arch `json:"subArchitectures"`
	} `json:"archMap,omitempty"`
	Syscalls []struct {
		specs.LinuxSyscall
		Name     string `json:"name,omitempty"`
		Includes struct {
			Caps []string `json:"caps,omitempty"`
		} `json:"includes"`
		Excludes struct {
			Caps []string `json:"caps,omitempty"`
		} `json:"excludes"`
	} `json:"syscalls"`
}

func parseDockerSeccomp(b []byte, capList []string) (*specs.LinuxSeccomp, error) {
	var p dockerSeccomp
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fmt.Errorf("decoding seccomp profile failed: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if p.DefaultAction == "" {
		return nil, fmt.Errorf("seccomp profile has no defaultAction: %w", errdefs.ErrInvalidArgument)
	}
	out := &specs.LinuxSeccomp{DefaultAction: p.DefaultAction, DefaultErrnoRet: p.DefaultErrnoRet, Architectures: p.Architectures}
	for _, m := range p.ArchMap {
		out.Architectures = append(out.Architectures, m.Arch)
		out.Architectures = append(out.Architectures, m.SubArches...)
	}
	has := func(list []string) bool {
		for _, c := range list {
			if slices.Contains(capList, c) {
				return true
			}
		}
		return false
	}
	for _, sc := range p.Syscalls {
		if len(sc.Includes.Caps) > 0 && !has(sc.Includes.Caps) {
			continue
		}
		if len(sc.Excludes.Caps) > 0 && has(sc.Excludes.Caps) {
			continue
		}
		rule := sc.LinuxSyscall
		if sc.Name != "" {
			rule.Names = append(rule.Names, sc.Name)
		}
		out.Syscalls = append(out.Syscalls, rule)
	}
	if _, err := seccomp.Compile(out); err != nil {
		return nil, fmt.Errorf("seccomp profile: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf and returns (host path, container path) pairs.
func (d *Daemon) writeEtcFiles(c *ctr, hostname string, hostNet bool) ([][2]string, error) {
	dir := d.dataDir(c.ID)
	hosts := "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
	if hostname != "" {
		hosts += "127.0.1.1\t" + hostname + "\n"
	}
	for _, h := range c.HostConfig.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			return nil, fmt.Errorf("invalid extra host %q: %w", h, errdefs.ErrInvalidArgument)
		}
		hosts += ip + "\t" + name + "\n"
	}
	resolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		resolv = nil
	}
	if hostNet {
		if b, err := os.ReadFile("/etc/hosts"); err == nil {
			hosts = string(b)
		}
	}
	files := [][3]string{
		{"hostname", "/etc/hostname", hostname + "\n"},
		{"hosts", "/etc/hosts", hosts},
		{"resolv.conf", "/etc/resolv.conf", string(resolv)},
	}
	var out [][2]string
	for _, f := range files {
		p := filepath.Join(dir, f[0])
		if err := os.WriteFile(p, []byte(f[2]), 0o644); err != nil {
			return nil, err
		}
		out = append(out, [2]string{p, f[1]})
	}
	return out, nil
}

// resolveUser turns "user[:group]" (names or numbers) into IDs using the
// container's /etc/passwd and /etc/group, as docker does.
func resolveUser(rootfs, spec string) (specs.User, error) {
	var u specs.User
	if spec == "" {
		spec = "0"
	}
	name, group, hasGroup := strings.Cut(spec, ":")
	passwd := readColonFile(rootfs, "/etc/passwd")
	if id, err := strconv.ParseUint(name, 10, 32); err == nil {
		u.UID = uint32(id)
		for _, e := range passwd {
			if len(e) > 3 && e[2] == name {
				if g, err := strconv.ParseUint(e[3], 10, 32); err == nil {
					u.GID = uint32(g)
				}
				name = e[0]
				break
			}
		}
	} else {
		found := false
		for _, e := range passwd {
			if len(e) > 3 && e[0] == name {
				uid, err1 := strconv.ParseUint(e[2], 10, 32)
				gid, err2 := strconv.ParseUint(e[3], 10, 32)
				if err1 == nil && err2 == nil {
					u.UID, u.GID, found = uint32(uid), uint32(gid), true
					break
				}
			}
		}
		if !found {
			return u, fmt.Errorf("unable to find user %s: no matching entries in passwd file: %w", name, errdefs.ErrInvalidArgument)
		}
	}
	groups := readColonFile(rootfs, "/etc/group")
	if hasGroup {
		if id, err := strconv.ParseUint(group, 10, 32); err == nil {
			u.GID = uint32(id)
		} else {
			found := false
			for _, e := range groups {
				if len(e) > 2 && e[0] == group {
					if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil {
						u.GID, found = uint32(gid), true
						break
					}
				}
			}
			if !found {
				return u, fmt.Errorf("unable to find group %s: no matching entries in group file: %w", group, errdefs.ErrInvalidArgument)
			}
		}
	}
	// Supplementary groups: those that list the user as a member.
	for _, e := range groups {
		if len(e) > 3 && slices.Contains(strings.Split(e[3], ","), name) {
			if gid, err := strconv.ParseUint(e[2], 10, 32); err == nil && uint32(gid) != u.GID {
				u.AdditionalGids = append(u.AdditionalGids, uint32(gid))
			}
		}
	}
	return u, nil
}

// readColonFile reads a passwd-style file of the container, resolved
// inside its root; a missing file is empty.
func readColonFile(rootfs, path string) [][]string {
	p, err := securejoin.SecureJoin(rootfs, path)
	if err != nil {
		return nil
	}
	// The image is untrusted: no following a last-moment symlink, no
	// blocking on a fifo, only regular files, and at most 4 MiB.
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	var out [][]string
	sc := bufio.NewScanner(io.LimitReader(f, 4<<20))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, strings.Split(line, ":"))
	}
	return out
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
// container gets the host's /dev/shm too), --pid container:NAME joins a
// running container's, --ipc none has no /dev/shm. (--ipc container:NAME
// is refused at create: sharing /dev/shm needs a tmpfs the daemon keeps
// outside the donor, docker's "shareable", which tent does not make yet.)
func (d *Daemon) shareNamespaces(s *specs.Spec, hc *container.HostConfig) error {
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
		case isContainer && other != "" && m.typ == specs.PIDNamespace:
			c, err := d.get(other)
			if err != nil {
				return err
			}
			c.mu.Lock()
			pid, running := c.State.Pid, c.running()
			c.mu.Unlock()
			if !running {
				return fmt.Errorf("cannot join %s of a non running container: %s: %w", m.what, other, errdefs.ErrConflict)
			}
			for i, n := range s.Linux.Namespaces {
				if n.Type == m.typ {
					s.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/pid", pid)
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
