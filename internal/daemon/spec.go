package daemon

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/spec"
)

// spec makes the OCI runtime spec of a container whose root file system
// is mounted at rootfs (internal/spec), with what is the engine's own:
// its /etc files, volumes and binds, the init, a PID namespace to join.
func (d *Daemon) spec(c *ctr, rootfs string) (*specs.Spec, error) {
	in := spec.Container{
		ID: c.ID, Config: c.Config, Host: c.HostConfig, Args: append([]string{c.Path}, c.Args...),
		Rootfs: rootfs, CgroupParent: d.cfg.CgroupParent,
		Files: func(hostname string) ([][2]string, error) {
			return d.writeEtcFiles(c, hostname, c.HostConfig.NetworkMode.IsHost())
		},
	}
	if d.useInit(c.HostConfig) {
		in.Init = d.cfg.InitPath
	}
	if other, ok := strings.CutPrefix(string(c.HostConfig.PidMode), "container:"); ok && other != "" {
		donor, err := d.get(other)
		if err != nil {
			return nil, err
		}
		donor.mu.Lock()
		pid, running := donor.State.Pid, donor.running()
		donor.mu.Unlock()
		if !running {
			return nil, fmt.Errorf("cannot join PID of a non running container: %s: %w", other, errdefs.ErrConflict)
		}
		in.PIDNamespace = fmt.Sprintf("/proc/%d/ns/pid", pid)
	}
	var err error
	if in.Mounts, err = d.specMounts(c); err != nil {
		return nil, err
	}
	return spec.Build(in)
}

// useInit tells whether a container runs an init as PID 1: its own
// choice (--init, --init=false), else the daemon's --init.
func (d *Daemon) useInit(hc *container.HostConfig) bool {
	if hc.Init != nil {
		return *hc.Init
	}
	return d.cfg.Init
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
