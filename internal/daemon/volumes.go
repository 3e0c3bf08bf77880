package daemon

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/snapshot"
	vol "github.com/tent-project/tent/internal/volume"
)

// Volumes: the store (internal/volume, docker's local driver) serves
// the volume endpoints; what is the engine's own is which containers use
// a volume (its mount points, below) and the events.

// VolumeCreate is POST /volumes/create.
func (d *Daemon) VolumeCreate(req volume.CreateRequest) (volume.Volume, error) {
	if req.Driver != "" && req.Driver != "local" {
		return volume.Volume{}, fmt.Errorf("error looking up volume plugin %s: plugin %q not found: %w", req.Driver, req.Driver, errdefs.ErrNotFound)
	}
	v, _, err := d.vols.Create(req.Name, req.Labels, req.DriverOpts)
	if err != nil {
		return volume.Volume{}, err
	}
	return d.vols.API(v), nil
}

// VolumeInspect is GET /volumes/{name}.
func (d *Daemon) VolumeInspect(name string) (volume.Volume, error) {
	v, err := d.vols.Get(name)
	if err != nil {
		return volume.Volume{}, err
	}
	return d.vols.API(v), nil
}

// volumeUsers are the containers that mount volume name.
func (d *Daemon) volumeUsers(name string) []string {
	var ids []string
	for _, c := range d.all() {
		c.mu.Lock()
		for _, m := range c.MountPoints {
			if m.Type == mount.TypeVolume && m.Name == name {
				ids = append(ids, c.ID)
				break
			}
		}
		c.mu.Unlock()
	}
	return ids
}

// VolumeList is GET /volumes, with the filters name, driver, label and
// dangling (not used by any container).
func (d *Daemon) VolumeList(f map[string][]string) (volume.ListResponse, error) {
	for k := range f {
		if !slices.Contains([]string{"name", "driver", "label", "dangling"}, k) {
			return volume.ListResponse{}, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	all, err := d.vols.List()
	if err != nil {
		return volume.ListResponse{}, err
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range all {
		if d.volumeMatches(v, f) {
			out.Volumes = append(out.Volumes, d.vols.API(v))
		}
	}
	return out, nil
}

func (d *Daemon) volumeMatches(v *vol.Volume, f map[string][]string) bool {
	if names := f["name"]; len(names) > 0 && !slices.ContainsFunc(names, func(n string) bool { return strings.Contains(v.Name, n) }) {
		return false
	}
	if drivers := f["driver"]; len(drivers) > 0 && !slices.Contains(drivers, "local") {
		return false
	}
	if dl := f["dangling"]; len(dl) > 0 {
		dangling := len(d.volumeUsers(v.Name)) == 0
		if (dl[0] == "true" || dl[0] == "1") != dangling {
			return false
		}
	}
	return allLabels(v.Labels, f["label"])
}

// VolumeRemove is DELETE /volumes/{name}; force only forgives a missing
// volume, as docker's.
func (d *Daemon) VolumeRemove(name string, force bool) error {
	err := d.vols.Remove(name, d.volumeUsers)
	if force && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

// VolumePrune removes unused volumes: anonymous ones, or named ones too
// with everything (the filter all=true of API 1.42 and later, as
// docker), narrowed by f.
func (d *Daemon) VolumePrune(everything bool, f backend.PruneFilter) (volume.PruneReport, error) {
	report := volume.PruneReport{VolumesDeleted: []string{}}
	all, err := d.vols.List()
	if err != nil {
		return report, err
	}
	for _, v := range all {
		if !everything && !v.Anonymous() || !f.Matches(v.CreatedAt, v.Labels) {
			continue
		}
		size := d.vols.Size(v.Name)
		if err := d.vols.Remove(v.Name, d.volumeUsers); err != nil {
			continue // in use
		}
		report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		report.SpaceReclaimed += uint64(size)
	}
	return report, nil
}

// A mountPoint is a bind or volume mount of a container, decided at
// create and kept in its record.
type mountPoint struct {
	Type        mount.Type `json:"type"`
	Name        string     `json:"name,omitempty"`   // volume
	Source      string     `json:"source,omitempty"` // bind: the host path
	Destination string     `json:"destination"`
	RW          bool       `json:"rw"`
	Mode        string     `json:"mode,omitempty"` // as written after the second colon of -v
	Propagation string     `json:"propagation,omitempty"`
	// NoCopy: do not fill an empty volume with the image's files there.
	NoCopy bool `json:"noCopy,omitempty"`
	// Copied: the image's files were copied in (once, at first start).
	Copied bool `json:"copied,omitempty"`
	// MustExist: a --mount bind, whose source docker does not create.
	MustExist bool `json:"mustExist,omitempty"`
	// VolumeOptions and VolumeLabels: --mount's volume-opt and
	// volume-label, for a volume it makes.
	VolumeOptions map[string]string `json:"volumeOptions,omitempty"`
	VolumeLabels  map[string]string `json:"volumeLabels,omitempty"`
	// NonRecursive: a bind of the source alone, not the mounts below it
	// (--mount bind-recursive=disabled).
	NonRecursive bool `json:"nonRecursive,omitempty"`
	// ReadOnlyNonRecursive: read-only at the top mount only; else a
	// read-only mount is read-only all the way down where the kernel can
	// (mount_setattr), as dockerd's since API 1.44.
	ReadOnlyNonRecursive bool `json:"readOnlyNonRecursive,omitempty"`
}

// bindOptions reads --mount's bind options into m: propagation,
// bind-recursive (enabled, disabled, writable, readonly) and
// bind-create-src, with dockerd's checks.
func bindOptions(m *mountPoint, mt mount.Mount) error {
	bo := mt.BindOptions
	if bo == nil {
		return nil
	}
	if bo.Propagation != "" {
		m.Propagation = string(bo.Propagation)
	}
	m.MustExist = !bo.CreateMountpoint
	m.NonRecursive = bo.NonRecursive
	m.ReadOnlyNonRecursive = bo.ReadOnlyNonRecursive
	invalid := func(msg string) error {
		return fmt.Errorf("invalid mount config for type \"bind\": %s: %w", msg, errdefs.ErrInvalidArgument)
	}
	switch {
	case (bo.ReadOnlyNonRecursive || bo.ReadOnlyForceRecursive) && !mt.ReadOnly:
		return invalid("ReadOnlyNonRecursive and ReadOnlyForceRecursive need ReadOnly")
	case bo.ReadOnlyNonRecursive && bo.ReadOnlyForceRecursive:
		return invalid("ReadOnlyNonRecursive and ReadOnlyForceRecursive are mutually exclusive")
	case bo.NonRecursive && bo.ReadOnlyForceRecursive:
		return invalid("NonRecursive and ReadOnlyForceRecursive are mutually exclusive")
	case bo.ReadOnlyForceRecursive && !runtime.RecursiveMountAttrsSupported():
		return fmt.Errorf("recursively read-only mounts need Linux 5.12 or later (mount_setattr): %w", errdefs.ErrNotImplemented)
	}
	return nil
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// parseMountPoints reads -v (Binds), --mount (Mounts) and the config's
// volumes (the image's VOLUMEs included) into mount points; anonymous
// volumes have no name yet. --mount tmpfs entries go to hc.Tmpfs.
// roNonRecursive: read-only mounts are so at their top only (API < 1.44).
func parseMountPoints(cfg *container.Config, hc *container.HostConfig, roNonRecursive bool) ([]mountPoint, error) {
	var out []mountPoint
	seen := map[string]bool{}
	add := func(m mountPoint) error {
		m.ReadOnlyNonRecursive = m.ReadOnlyNonRecursive || roNonRecursive && !m.RW
		m.Destination = filepath.Clean(m.Destination)
		if !filepath.IsAbs(m.Destination) {
			return fmt.Errorf("invalid mount config: mount path must be absolute: %q: %w", m.Destination, errdefs.ErrInvalidArgument)
		}
		if m.Destination == "/" {
			return fmt.Errorf("invalid specification: destination can't be '/': %w", errdefs.ErrInvalidArgument)
		}
		if seen[m.Destination] {
			return fmt.Errorf("Duplicate mount point: %s: %w", m.Destination, errdefs.ErrInvalidArgument)
		}
		seen[m.Destination] = true
		out = append(out, m)
		return nil
	}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) > 3 || slices.Contains(parts, "") {
			return nil, fmt.Errorf("invalid volume specification: '%s': %w", b, errdefs.ErrInvalidArgument)
		}
		m := mountPoint{Type: mount.TypeVolume, RW: true, Destination: parts[0]}
		if len(parts) >= 2 {
			m.Destination = parts[1]
			if filepath.IsAbs(parts[0]) {
				m.Type, m.Source, m.Propagation = mount.TypeBind, filepath.Clean(parts[0]), "rprivate"
			} else {
				if err := vol.CheckName(parts[0]); err != nil {
					return nil, fmt.Errorf("create %s: %w", parts[0], err)
				}
				m.Name, m.Mode = parts[0], "z" // docker's default for a named volume
			}
		}
		if len(parts) == 3 {
			m.Mode = parts[2]
			for _, o := range strings.Split(parts[2], ",") {
				switch {
				case o == "ro":
					m.RW = false
				case o == "rw", o == "z", o == "Z":
				case o == "nocopy" && m.Type == mount.TypeVolume:
					m.NoCopy = true
				case slices.Contains(propagations, o) && m.Type == mount.TypeBind:
					m.Propagation = o
				default:
					return nil, fmt.Errorf("invalid mode: %s: %w", o, errdefs.ErrInvalidArgument)
				}
			}
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	for _, mt := range hc.Mounts {
		m := mountPoint{Type: mt.Type, Destination: mt.Target, RW: !mt.ReadOnly}
		switch mt.Type {
		case mount.TypeBind:
			if !filepath.IsAbs(mt.Source) {
				return nil, fmt.Errorf("invalid mount config for type \"bind\": invalid mount path: '%s' mount path must be absolute: %w", mt.Source, errdefs.ErrInvalidArgument)
			}
			m.Source, m.MustExist, m.Propagation = filepath.Clean(mt.Source), true, "rprivate"
			if err := bindOptions(&m, mt); err != nil {
				return nil, err
			}
		case mount.TypeVolume:
			if mt.Source != "" {
				if err := vol.CheckName(mt.Source); err != nil {
					return nil, err
				}
			}
			m.Name = mt.Source
			m.NoCopy = mt.VolumeOptions != nil && mt.VolumeOptions.NoCopy
			if vo := mt.VolumeOptions; vo != nil {
				if vo.Subpath != "" {
					// The source would be a path inside a volume that other
					// containers can change while it is bound: not without
					// an fd-based bind (dockerd's), which tent lacks yet.
					return nil, fmt.Errorf("volume subpath (%s) is not supported yet: %w", vo.Subpath, errdefs.ErrNotImplemented)
				}
				m.VolumeLabels = vo.Labels
			}
			if dc := mt.VolumeOptions; dc != nil && dc.DriverConfig != nil {
				if n := dc.DriverConfig.Name; n != "" && n != "local" {
					return nil, fmt.Errorf("volume driver %q is not supported: %w", n, errdefs.ErrNotImplemented)
				}
				// volume-opt=...: the options of a volume this mount makes.
				if err := vol.ValidateOptions(mt.Source, dc.DriverConfig.Options); err != nil {
					return nil, err
				}
				m.VolumeOptions = dc.DriverConfig.Options
			}
		case mount.TypeTmpfs:
			var opts []string
			if mt.TmpfsOptions != nil {
				if mt.TmpfsOptions.SizeBytes > 0 {
					opts = append(opts, fmt.Sprintf("size=%d", mt.TmpfsOptions.SizeBytes))
				}
				if mt.TmpfsOptions.Mode != 0 {
					opts = append(opts, fmt.Sprintf("mode=%o", mt.TmpfsOptions.Mode))
				}
				for _, o := range mt.TmpfsOptions.Options { // [["noexec"], ["nr_inodes", "1k"]]
					if len(o) == 0 || len(o) > 2 {
						return nil, fmt.Errorf("invalid tmpfs option %q: %w", o, errdefs.ErrInvalidArgument)
					}
					opts = append(opts, strings.Join(o, "="))
				}
			}
			if mt.ReadOnly {
				opts = append(opts, "ro")
			}
			if hc.Tmpfs == nil {
				hc.Tmpfs = map[string]string{}
			}
			hc.Tmpfs[mt.Target] = strings.Join(opts, ",")
			continue
		default:
			return nil, fmt.Errorf("mount type %q is not supported: %w", mt.Type, errdefs.ErrNotImplemented)
		}
		if err := add(m); err != nil {
			return nil, err
		}
	}
	// The config's volumes that nothing else mounts become anonymous ones.
	var anon []string
	for dst := range cfg.Volumes {
		if _, tmpfs := hc.Tmpfs[dst]; !tmpfs && !seen[filepath.Clean(dst)] {
			anon = append(anon, dst)
		}
	}
	sort.Strings(anon)
	for _, dst := range anon {
		if err := add(mountPoint{Type: mount.TypeVolume, Destination: dst, RW: true}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// setUpVolumes makes the volumes that mount points name (and names the
// anonymous ones), and returns the ones it made, for undoing; the volume
// store is locked.
func (d *Daemon) setUpVolumes(mps []mountPoint) (made []string, err error) {
	for i := range mps {
		m := &mps[i]
		switch {
		case m.Type == mount.TypeBind && m.MustExist:
			if _, err := os.Stat(m.Source); err != nil {
				return made, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", m.Source, errdefs.ErrInvalidArgument)
			}
		case m.Type == mount.TypeVolume:
			labels := m.VolumeLabels
			if m.Name == "" {
				labels = maps.Clone(labels)
				if labels == nil {
					labels = map[string]string{}
				}
				labels[vol.AnonymousLabel] = ""
			}
			v, created, err := d.vols.CreateLocked(m.Name, labels, m.VolumeOptions)
			if err != nil {
				return made, err
			}
			m.Name = v.Name
			if created {
				made = append(made, v.Name)
			}
		}
	}
	return made, nil
}

// removeVolumes removes volumes that nothing uses any more (errors are
// logged: the container they belonged to is gone either way).
func (d *Daemon) removeVolumes(names []string) {
	for _, n := range names {
		if err := d.vols.Remove(n, d.volumeUsers); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
			d.log.Warn("remove volume", "volume", n, "err", err)
		}
	}
}

// isEmptyDir tells whether dir has no entries.
func isEmptyDir(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return false
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	return err == io.EOF
}

// mountPointsAPI describes the mount points as inspect's Mounts.
func (d *Daemon) mountPointsAPI(mps []mountPoint) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range mps {
		mp := container.MountPoint{Type: m.Type, Destination: m.Destination, RW: m.RW, Mode: m.Mode,
			Propagation: mount.Propagation(m.Propagation), Source: m.Source}
		if m.Type == mount.TypeVolume {
			mp.Name, mp.Source, mp.Driver = m.Name, d.vols.Path(m.Name), "local"
		}
		out = append(out, mp)
	}
	return out
}

// mounts are the container's mount points; a record from before mount
// points were kept has its -v binds only.
func (c *ctr) mounts() []mountPoint {
	if c.MountPoints == nil && len(c.HostConfig.Binds) > 0 {
		mps, _ := parseMountPoints(&container.Config{}, &container.HostConfig{Binds: c.HostConfig.Binds}, true)
		return mps
	}
	return c.MountPoints
}

// specMounts are the OCI mounts of the mount points. A -v bind source
// that does not exist is made, as docker does.
func (d *Daemon) specMounts(c *ctr) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range c.mounts() {
		src := m.Source
		if m.Type == mount.TypeVolume {
			src = d.vols.Path(m.Name)
		} else if _, err := os.Stat(src); os.IsNotExist(err) && !m.MustExist {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, err
			}
		}
		opts := []string{"rbind"}
		if m.NonRecursive {
			opts[0] = "bind"
		}
		if !m.RW {
			opts = append(opts, "ro")
			if !m.ReadOnlyNonRecursive && !m.NonRecursive && runtime.RecursiveMountAttrsSupported() {
				opts = append(opts, "rro")
			}
		}
		if m.Propagation != "" {
			opts = append(opts, m.Propagation)
		}
		out = append(out, specs.Mount{Destination: m.Destination, Type: "bind", Source: src, Options: opts})
	}
	return out, nil
}

// copyUp fills each empty volume with what the image has at its mount
// path, once, as docker does (not with nocopy); c.mu is held and the
// root file system is mounted at rootfs.
func (d *Daemon) copyUp(c *ctr, rootfs string) error {
	for i := range c.MountPoints {
		m := &c.MountPoints[i]
		if m.Type != mount.TypeVolume || m.NoCopy || m.Copied {
			continue
		}
		m.Copied = true
		data := d.vols.Path(m.Name)
		if !isEmptyDir(data) {
			continue
		}
		// Resolved inside the root file system: an image's symlink cannot
		// point the copy at the host.
		src, err := securejoin.SecureJoin(rootfs, m.Destination)
		if err != nil {
			return err
		}
		if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
			continue
		}
		if err := snapshot.CopyTree(src, data); err != nil {
			return fmt.Errorf("copy the image's %s into volume %s: %w", m.Destination, m.Name, err)
		}
	}
	return nil
}

// volumeNames are the volumes c mounts.
func (c *ctr) volumeNames() []string {
	var names []string
	for _, m := range c.mounts() {
		if m.Type == mount.TypeVolume {
			names = append(names, m.Name)
		}
	}
	return names
}

// mountVolumes mounts the volumes with options that c uses (the first
// user mounts them; internal/volume); c is starting.
func (d *Daemon) mountVolumes(c *ctr) error { return d.vols.Acquire(c.volumeNames()) }

// releaseVolumes undoes mountVolumes once c has stopped.
func (d *Daemon) releaseVolumes(c *ctr) { d.vols.Release(c.volumeNames()) }

// countVolumes counts a running container found at daemon start as a
// user of its volumes, which are still mounted.
func (d *Daemon) countVolumes(c *ctr) { d.vols.Count(c.volumeNames()) }
