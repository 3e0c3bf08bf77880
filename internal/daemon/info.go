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
)

// Info describes the engine and host, as GET /info.
func (d *Daemon) Info() (*system.Info, error) {
	info := sysinfo.Info(sysinfo.Engine{DataRoot: d.cfg.DataRoot, Driver: d.driver, Overlay: d.driver == imagesvc.OverlayDriver,
		LogDriver: d.logDriver(), LogDrivers: logfile.Drivers, Insecure: d.cfg.InsecureRegistries})
	d.runtimes.Info(info)
	if d.cfg.InitPath != "" {
		info.InitBinary = filepath.Base(d.cfg.InitPath)
	}
	for _, c := range d.ctrs.All() {
		c.Mu.Lock()
		switch c.State.Status {
		case container.StateRunning:
			info.ContainersRunning++
		case container.StatePaused:
			info.ContainersPaused++
		default:
			info.ContainersStopped++
		}
		c.Mu.Unlock()
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
