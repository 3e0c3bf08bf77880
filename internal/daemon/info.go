package daemon

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/tent-project/tent/internal/imagesvc"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/sysinfo"
	"github.com/tent-project/tent/internal/task/vmtask"
)

// ownRuntime is the name of tent's own runtime (the process backend,
// internal/task/proc), which containers run with unless HostConfig.Runtime
// or the daemon's default runtime names another of d.runtimes.
const ownRuntime = "tent"

// runcAlias names the default runtime too: tent's runtime is a drop-in for
// runc, and compose files and scripts written for dockerd ask for "runc".
const runcAlias = "runc"

// Info describes the engine and host, as GET /info.
func (d *Daemon) Info() (*system.Info, error) {
	info := sysinfo.Info(sysinfo.Engine{DataRoot: d.cfg.DataRoot, Driver: d.driver, Overlay: d.driver == imagesvc.OverlayDriver,
		LogDriver: d.logDriver(), LogDrivers: logfile.Drivers, Insecure: d.cfg.InsecureRegistries})
	info.DefaultRuntime = d.defaultRuntime
	for name := range d.runtimes {
		r := system.Runtime{Path: d.cfg.Exe}
		if b, ok := d.cfg.Runtimes[name]; ok {
			r = system.Runtime{Path: b.Path, Args: b.Args}
		}
		info.Runtimes[name] = system.RuntimeWithStatus{Runtime: r}
	}
	info.Runtimes[runcAlias] = info.Runtimes[ownRuntime]
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

// engineID is a stable identity of this data root, made on first use.
func (d *Daemon) engineID() string {
	p := filepath.Join(d.cfg.DataRoot, "engine-id")
	if b, err := os.ReadFile(p); err == nil {
		return strings.TrimSpace(string(b))
	}
	id := stringid.New()[:32]
	os.WriteFile(p, []byte(id+"\n"), 0o600)
	return id
}
