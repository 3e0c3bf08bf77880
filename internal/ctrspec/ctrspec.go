// Package ctrspec makes a container's OCI runtime spec with what is the
// engine's own on top of internal/spec (which knows a container's
// configuration only): its /etc files, volumes and binds, the init,
// --link targets, and the namespaces and /dev/shm it shares with other
// containers. The daemon makes the specs of containers this way, and the
// builder's RUN steps run as containers of the daemon.
package ctrspec

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/netsvc"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/task/vmtask"
	"github.com/tent-project/tent/internal/volume"
	"golang.org/x/sys/unix"
)

// Maker makes the specs of the engine's containers.
type Maker struct {
	Containers *containers.Store
	Networks   *netsvc.Networks
	Net        *network.Manager
	Volumes    *volume.Store
	// CgroupParent is where containers' cgroups go unless they say.
	CgroupParent string
	// InitPath is the init that --init runs; Init gives every
	// container one unless it says no (the daemon's --init).
	InitPath string
	Init     bool
	// FilesDir is where container id's /etc files are written (they
	// stay: inspect shows them), RunDir its directory while the host is up.
	FilesDir func(id string) string
	RunDir   func(id string) string
}

// Spec makes the OCI runtime spec of a container whose root file system
// is mounted at rootfs (internal/spec), with what is the engine's own:
// its /etc files, volumes and binds, the init, namespaces to join; eps
// are its endpoints, allocated for this run.
func (m *Maker) Spec(c *containers.Container, rootfs string, eps []*network.Endpoint) (*specs.Spec, error) {
	links, err := m.links(c)
	if err != nil {
		return nil, err
	}
	in := spec.Container{
		ID: c.ID, Config: c.Config, Host: c.HostConfig, Args: append([]string{c.Path}, c.Args...),
		Rootfs: rootfs, CgroupParent: m.CgroupParent,
		Files: func(hostname string) ([][2]string, error) {
			return m.writeEtcFiles(c, hostname, eps, links)
		},
	}
	// docker's link variables, which the container's own override: on the
	// default bridge alone (on a user network a link is a name).
	if mode := c.HostConfig.NetworkMode; len(links) > 0 && (mode == "" || mode == "default" || mode == network.NameBridge) {
		cfg := *c.Config
		cfg.Env = spec.MergeEnv(spec.LinkEnv(c.Name, links), c.Config.Env)
		in.Config = &cfg
	}
	if m.UseInit(c.HostConfig) {
		in.Init = m.InitPath
	}
	if other, ok := strings.CutPrefix(string(c.HostConfig.PidMode), "container:"); ok && other != "" {
		if in.PIDNamespace, err = m.donorNamespace(other, "pid", "PID"); err != nil {
			return nil, err
		}
	}
	if in.IPCNamespace, in.Shm, err = m.ipcShare(c); err != nil {
		return nil, err
	}
	if c.HostConfig.NetworkMode.IsContainer() {
		if in.NetNS, err = m.donorNamespace(c.HostConfig.NetworkMode.ConnectedContainer(), "net", "network"); err != nil {
			return nil, err
		}
	}
	if in.Mounts, err = mounts.Spec(m.Volumes, c.Mounts()); err != nil {
		return nil, err
	}
	return spec.Build(in)
}

// donorNamespace is the namespace file (kind: pid, net) of a running
// container that another shares.
func (m *Maker) donorNamespace(ref, kind, what string) (string, error) {
	donor, err := m.Containers.Get(ref)
	if err != nil {
		return "", err
	}
	donor.Mu.Lock()
	pid, running := donor.State.Pid, donor.Running()
	donor.Mu.Unlock()
	if !running {
		return "", fmt.Errorf("cannot join %s of a non running container: %s: %w", what, ref, errdefs.ErrConflict)
	}
	return fmt.Sprintf("/proc/%d/ns/%s", pid, kind), nil
}

// shmDir is where the /dev/shm of a shareable IPC container is mounted:
// a tmpfs of the daemon's, outside the container, which the containers
// that join its IPC namespace bind too (a mount of the container's own
// namespace could not be bound into another's).
func (m *Maker) shmDir(id string) string { return filepath.Join(m.RunDir(id), "shm") }

// ipcShare is the IPC namespace to join and the /dev/shm to bind for c:
// a donor's for --ipc container:NAME (which must run, and be shareable,
// as dockerd asks), its own tmpfs (mounted here) when shareable.
func (m *Maker) ipcShare(c *containers.Container) (ns, shm string, err error) {
	mode := c.HostConfig.IpcMode
	if other, ok := strings.CutPrefix(string(mode), "container:"); ok && other != "" {
		donor, err := m.Containers.Get(other)
		if err != nil {
			return "", "", err
		}
		donor.Mu.Lock()
		shareable, running, pid := donor.HostConfig.IpcMode == "shareable", donor.Running(), donor.State.Pid
		donor.Mu.Unlock()
		if !running {
			return "", "", fmt.Errorf("can't join IPC of container %s: container %s is not running: %w", donor.ID, donor.ID, errdefs.ErrConflict)
		}
		ns = fmt.Sprintf("/proc/%d/ns/ipc", pid)
		if !shareable {
			return "", "", fmt.Errorf("cannot join IPC of container %s: non-shareable IPC (hint: use IpcMode:shareable for the donor container): %w", other, errdefs.ErrInvalidArgument)
		}
		return ns, m.shmDir(donor.ID), nil
	}
	if mode != "shareable" {
		return "", "", nil
	}
	dir := m.shmDir(c.ID)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", "", err
	}
	size := c.HostConfig.ShmSize
	if size <= 0 {
		size = 64 << 20
	}
	unix.Unmount(dir, unix.MNT_DETACH) // a last run's, if any
	if err := unix.Mount("shm", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, fmt.Sprintf("mode=1777,size=%d", size)); err != nil {
		return "", "", fmt.Errorf("shareable /dev/shm: %w", err)
	}
	return "", dir, nil
}

// ReleaseShm unmounts a shareable container's /dev/shm once it has
// stopped (joined containers keep it alive for as long as they hold it).
func (m *Maker) ReleaseShm(c *containers.Container) {
	if c.HostConfig.IpcMode == "shareable" {
		unix.Unmount(m.shmDir(c.ID), unix.MNT_DETACH)
	}
}

// UseInit tells whether a container runs an init as PID 1: its own
// choice (--init, --init=false), else the daemon's --init.
func (m *Maker) UseInit(hc *container.HostConfig) bool {
	if hc.Runtime == vmtask.Name {
		return false // a VM's agent is its init: it reaps and passes signals
	}
	if hc.Init != nil {
		return *hc.Init
	}
	return m.Init
}

// writeEtcFiles writes the container's /etc/hostname, /etc/hosts and
// /etc/resolv.conf (internal/spec makes them as dockerd does) and returns
// (host path, container path) pairs.
func (m *Maker) writeEtcFiles(c *containers.Container, hostname string, eps []*network.Endpoint, links []spec.Link) ([][2]string, error) {
	hc := c.HostConfig
	extra, err := m.Networks.ExtraHosts(hc)
	if err != nil {
		return nil, err
	}
	h := spec.HostsFile{Extra: extra, Links: links, Hostname: hostname, Domainname: c.Config.Domainname, HostNetwork: hc.NetworkMode.IsHost()}
	if len(eps) > 0 {
		h.IP = eps[0].IP.String()
		if eps[0].IP6.IsValid() {
			h.IP6 = eps[0].IP6.String()
		}
	}
	if h.HostNetwork {
		h.Host, _ = os.ReadFile("/etc/hosts")
	}
	engineDNS := ""
	if len(eps) > 0 && m.resolvesNames(eps[0]) {
		// The engine's server answers, and forwards to the --dns servers
		// or the host's.
		gw, _ := m.Net.Get(eps[0].Network)
		engineDNS = gw.Gateway.String()
	}
	hostResolv, _ := os.ReadFile("/etc/resolv.conf")
	files := [][3]string{
		{"hostname", "/etc/hostname", hostname + "\n"},
		{"hosts", "/etc/hosts", h.String()},
		{"resolv.conf", "/etc/resolv.conf", spec.ResolvConf(hostResolv, hc, engineDNS)},
	}
	dir := m.FilesDir(c.ID)
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

// links are a container's --link targets: each must run, and is known by
// its address on the network its main endpoint is on.
func (m *Maker) links(c *containers.Container) ([]spec.Link, error) {
	var out []spec.Link
	for _, l := range c.HostConfig.Links {
		name, alias, _ := strings.Cut(l, ":")
		name = strings.TrimPrefix(name, "/")
		alias = alias[strings.LastIndex(alias, "/")+1:]
		target, err := m.Containers.Get(name)
		if err != nil {
			return nil, fmt.Errorf("could not get container for %s: %w", name, err)
		}
		target.Mu.Lock()
		running, tname, tid := target.Running(), target.Name, target.ID
		env := slices.Clone(target.Config.Env)
		var exposed []netapi.Port
		for p := range target.Config.ExposedPorts {
			exposed = append(exposed, p)
		}
		target.Mu.Unlock()
		if alias == "" {
			alias = tname
		}
		if !running {
			return nil, fmt.Errorf("cannot link to a non running container: /%s AS /%s/%s: %w", tname, c.Name, alias, errdefs.ErrInvalidArgument)
		}
		ip := ""
		for _, ep := range m.Net.ContainerEndpoints(tid) {
			if ip == "" || ep.Gateway {
				ip = ep.IP.String()
			}
		}
		if ip == "" {
			return nil, fmt.Errorf("cannot link to /%s: it has no address on a network: %w", tname, errdefs.ErrInvalidArgument)
		}
		slices.SortFunc(exposed, func(a, b netapi.Port) int { return int(a.Num()) - int(b.Num()) })
		out = append(out, spec.Link{Alias: alias, Name: tname, ID: tid, IP: ip, Exposed: exposed, Env: env})
	}
	return out, nil
}

// resolvesNames reports whether ep is on a network with the engine's DNS.
func (m *Maker) resolvesNames(ep *network.Endpoint) bool {
	n, err := m.Net.Get(ep.Network)
	return err == nil && n.UserDefined()
}
