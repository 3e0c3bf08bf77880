package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/volume"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/snapshot"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Volumes: docker's "local" driver. A volume is a directory,
// DataRoot/volumes/NAME/_data, recorded in the "volumes" bucket. Named
// volumes are made by `volume create` or by the first container that
// names one; anonymous ones (-v /path, VOLUME in the image) get a random
// name and go with their container on `rm -v` or `--rm`.

var volumesBucket = []byte("volumes")

// anonymousLabel marks an anonymous volume, as docker does.
const anonymousLabel = "com.docker.volume.anonymous"

type volumeRecord struct {
	Name      string            `json:"name"`
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
	// Options are the local driver's: type, device and o, as mount(8)'s
	// -t, device and -o. With them the volume's _data is a mount point
	// while a running container uses the volume.
	Options map[string]string `json:"options,omitempty"`
}

// validateVolumeOptions applies the local driver's rules to the options
// of volume name: only type, device and o; type and device together; o
// only with both. The messages are dockerd's.
func validateVolumeOptions(name string, opts map[string]string) error {
	for k := range opts {
		if k != "type" && k != "device" && k != "o" {
			return fmt.Errorf("create %s: invalid option: %q: %w", name, k, errdefs.ErrInvalidArgument)
		}
	}
	required := map[string][]string{"type": {"device"}, "device": {"type"}, "o": {"device", "type"}}
	for _, k := range []string{"type", "device", "o"} {
		if _, ok := opts[k]; !ok {
			continue
		}
		for _, need := range required[k] {
			if _, ok := opts[need]; !ok {
				return fmt.Errorf("create %s: missing required option: %q: %w", name, need, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

func (v *volumeRecord) anonymous() bool {
	_, ok := v.Labels[anonymousLabel]
	return ok
}

// validVolumeName is docker's rule for local volume names (which also
// keeps them from being paths).
var validVolumeName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func checkVolumeName(name string) error {
	if !validVolumeName.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func (d *Daemon) volumeData(name string) string {
	return filepath.Join(d.cfg.DataRoot, "volumes", name, "_data")
}

func (d *Daemon) getVolume(name string) (*volumeRecord, error) {
	var v *volumeRecord
	err := d.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(volumesBucket); bk != nil {
			if b := bk.Get([]byte(name)); b != nil {
				v = &volumeRecord{}
				return json.Unmarshal(b, v)
			}
		}
		return nil
	})
	if err == nil && v == nil {
		err = fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	return v, err
}

func (d *Daemon) allVolumes() ([]*volumeRecord, error) {
	var out []*volumeRecord
	err := d.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(volumesBucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, b []byte) error {
			v := &volumeRecord{}
			if err := json.Unmarshal(b, v); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// createVolume makes volume name (a random one when empty), or returns
// the existing one of that name; created says which.
func (d *Daemon) createVolume(name string, labels, opts map[string]string) (v *volumeRecord, created bool, err error) {
	d.volMu.Lock()
	defer d.volMu.Unlock()
	return d.createVolumeLocked(name, labels, opts)
}

// createVolumeLocked is createVolume with volMu held.
func (d *Daemon) createVolumeLocked(name string, labels, opts map[string]string) (v *volumeRecord, created bool, err error) {
	if name == "" {
		name = newID()
	} else if err := checkVolumeName(name); err != nil {
		return nil, false, err
	}
	if v, err := d.getVolume(name); err == nil {
		return v, false, nil
	}
	v = &volumeRecord{Name: name, CreatedAt: time.Now().UTC(), Labels: labels, Options: opts}
	if err := os.MkdirAll(d.volumeData(name), 0o755); err != nil {
		return nil, false, err
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = d.db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(volumesBucket)
			if err != nil {
				return err
			}
			return bk.Put([]byte(name), b)
		})
	}
	if err != nil {
		os.RemoveAll(filepath.Dir(d.volumeData(name)))
		return nil, false, err
	}
	d.event(events.VolumeEventType, events.ActionCreate, name, map[string]string{"driver": "local"})
	return v, true, nil
}

// VolumeCreate is POST /volumes/create.
func (d *Daemon) VolumeCreate(req volume.CreateRequest) (volume.Volume, error) {
	if req.Driver != "" && req.Driver != "local" {
		return volume.Volume{}, fmt.Errorf("error looking up volume plugin %s: plugin %q not found: %w", req.Driver, req.Driver, errdefs.ErrNotFound)
	}
	if err := validateVolumeOptions(req.Name, req.DriverOpts); err != nil {
		return volume.Volume{}, err
	}
	v, _, err := d.createVolume(req.Name, req.Labels, req.DriverOpts)
	if err != nil {
		return volume.Volume{}, err
	}
	return d.volumeAPI(v), nil
}

func (d *Daemon) volumeAPI(v *volumeRecord) volume.Volume {
	labels := v.Labels
	if labels == nil {
		labels = map[string]string{}
	}
	opts := v.Options
	if opts == nil {
		opts = map[string]string{}
	}
	return volume.Volume{Name: v.Name, Driver: "local", Mountpoint: d.volumeData(v.Name), Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: labels, Options: opts}
}

// VolumeInspect is GET /volumes/{name}.
func (d *Daemon) VolumeInspect(name string) (volume.Volume, error) {
	v, err := d.getVolume(name)
	if err != nil {
		return volume.Volume{}, err
	}
	return d.volumeAPI(v), nil
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
	all, err := d.allVolumes()
	if err != nil {
		return volume.ListResponse{}, err
	}
	out := volume.ListResponse{Volumes: []volume.Volume{}, Warnings: []string{}}
	for _, v := range all {
		if d.volumeMatches(v, f) {
			out.Volumes = append(out.Volumes, d.volumeAPI(v))
		}
	}
	return out, nil
}

func (d *Daemon) volumeMatches(v *volumeRecord, f map[string][]string) bool {
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
	err := d.removeVolume(name)
	if force && errdefs.IsNotFound(err) {
		return nil
	}
	return err
}

func (d *Daemon) removeVolume(name string) error {
	d.volMu.Lock()
	defer d.volMu.Unlock()
	if _, err := d.getVolume(name); err != nil {
		return fmt.Errorf("remove %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	if users := d.volumeUsers(name); len(users) > 0 {
		return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, strings.Join(users, ", "), errdefs.ErrConflict)
	}
	unmountVolume(d.volumeData(name)) // one that a crash left mounted
	if err := os.RemoveAll(filepath.Dir(d.volumeData(name))); err != nil {
		return err
	}
	if err := d.db.Update(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(volumesBucket); bk != nil {
			return bk.Delete([]byte(name))
		}
		return nil
	}); err != nil {
		return err
	}
	d.event(events.VolumeEventType, events.ActionDestroy, name, map[string]string{"driver": "local"})
	return nil
}

// VolumePrune removes unused volumes: anonymous ones, or named ones too
// with everything (the filter all=true of API 1.42 and later, as
// docker), narrowed by f.
func (d *Daemon) VolumePrune(everything bool, f PruneFilter) (volume.PruneReport, error) {
	report := volume.PruneReport{VolumesDeleted: []string{}}
	all, err := d.allVolumes()
	if err != nil {
		return report, err
	}
	for _, v := range all {
		if !everything && !v.anonymous() || !f.matches(v.CreatedAt, v.Labels) {
			continue
		}
		size := dirSize(d.volumeData(v.Name))
		if err := d.removeVolume(v.Name); err != nil {
			continue // in use
		}
		report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		report.SpaceReclaimed += uint64(size)
	}
	return report, nil
}

func dirSize(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
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
	// VolumeOptions: --mount's volume-opt, for a volume it makes.
	VolumeOptions map[string]string `json:"volumeOptions,omitempty"`
}

var propagations = []string{"private", "rprivate", "shared", "rshared", "slave", "rslave"}

// parseMountPoints reads -v (Binds), --mount (Mounts) and the config's
// volumes (the image's VOLUMEs included) into mount points; anonymous
// volumes have no name yet. --mount tmpfs entries go to hc.Tmpfs.
func parseMountPoints(cfg *container.Config, hc *container.HostConfig) ([]mountPoint, error) {
	var out []mountPoint
	seen := map[string]bool{}
	add := func(m mountPoint) error {
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
				if err := checkVolumeName(parts[0]); err != nil {
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
			if mt.BindOptions != nil && mt.BindOptions.Propagation != "" {
				m.Propagation = string(mt.BindOptions.Propagation)
			}
		case mount.TypeVolume:
			if mt.Source != "" {
				if err := checkVolumeName(mt.Source); err != nil {
					return nil, err
				}
			}
			m.Name = mt.Source
			m.NoCopy = mt.VolumeOptions != nil && mt.VolumeOptions.NoCopy
			if dc := mt.VolumeOptions; dc != nil && dc.DriverConfig != nil {
				if n := dc.DriverConfig.Name; n != "" && n != "local" {
					return nil, fmt.Errorf("volume driver %q is not supported: %w", n, errdefs.ErrNotImplemented)
				}
				// volume-opt=...: the options of a volume this mount makes.
				if err := validateVolumeOptions(mt.Source, dc.DriverConfig.Options); err != nil {
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
// anonymous ones), and returns the ones it made, for undoing; volMu is
// held.
func (d *Daemon) setUpVolumes(mps []mountPoint) (made []string, err error) {
	for i := range mps {
		m := &mps[i]
		switch {
		case m.Type == mount.TypeBind && m.MustExist:
			if _, err := os.Stat(m.Source); err != nil {
				return made, fmt.Errorf("invalid mount config for type \"bind\": bind source path does not exist: %s: %w", m.Source, errdefs.ErrInvalidArgument)
			}
		case m.Type == mount.TypeVolume:
			var labels map[string]string
			if m.Name == "" {
				labels = map[string]string{anonymousLabel: ""}
			}
			v, created, err := d.createVolumeLocked(m.Name, labels, m.VolumeOptions)
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
		if err := d.removeVolume(n); err != nil && !errdefs.IsNotFound(err) && !errdefs.IsConflict(err) {
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
			mp.Name, mp.Source, mp.Driver = m.Name, d.volumeData(m.Name), "local"
		}
		out = append(out, mp)
	}
	return out
}

// mounts are the container's mount points; a record from before mount
// points were kept has its -v binds only.
func (c *ctr) mounts() []mountPoint {
	if c.MountPoints == nil && len(c.HostConfig.Binds) > 0 {
		mps, _ := parseMountPoints(&container.Config{}, &container.HostConfig{Binds: c.HostConfig.Binds})
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
			src = d.volumeData(m.Name)
		} else if _, err := os.Stat(src); os.IsNotExist(err) && !m.MustExist {
			if err := os.MkdirAll(src, 0o755); err != nil {
				return nil, err
			}
		}
		opts := []string{"rbind"}
		if !m.RW {
			opts = append(opts, "ro")
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
		data := d.volumeData(m.Name)
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

// Volumes with options are mounted while running containers use them
// (counted in volUsers, under volUsersMu: a lock of its own, taken with a
// container's lock held), as docker's local driver does: the first start
// mounts, the last end unmounts (a tmpfs volume starts empty each time).
// A restarted daemon counts its running containers again (countVolumes).

// mountVolumes mounts the optioned volumes of c's mount points that no
// running container has mounted yet; c is starting.
func (d *Daemon) mountVolumes(c *ctr) error {
	d.volUsersMu.Lock()
	defer d.volUsersMu.Unlock()
	var done []string
	for _, m := range c.mounts() {
		if m.Type != mount.TypeVolume {
			continue
		}
		v, err := d.getVolume(m.Name)
		if err != nil || len(v.Options) == 0 {
			continue
		}
		if d.volUsers[v.Name] == 0 {
			if err := mountVolume(v, d.volumeData(v.Name)); err != nil {
				d.releaseVolumesLocked(done)
				return fmt.Errorf("error while mounting volume '%s': %w", d.volumeData(v.Name), err)
			}
		}
		d.volUsers[v.Name]++
		done = append(done, v.Name)
	}
	return nil
}

// releaseVolumes undoes mountVolumes once c has stopped.
func (d *Daemon) releaseVolumes(c *ctr) {
	var names []string
	for _, m := range c.mounts() {
		if m.Type == mount.TypeVolume {
			names = append(names, m.Name)
		}
	}
	d.volUsersMu.Lock()
	d.releaseVolumesLocked(names)
	d.volUsersMu.Unlock()
}

// countVolumes counts a running container found at daemon start as a
// user of its optioned volumes, which are still mounted.
func (d *Daemon) countVolumes(c *ctr) {
	d.volUsersMu.Lock()
	defer d.volUsersMu.Unlock()
	for _, m := range c.mounts() {
		if v, err := d.getVolume(m.Name); m.Type == mount.TypeVolume && err == nil && len(v.Options) > 0 {
			d.volUsers[v.Name]++
		}
	}
}

func (d *Daemon) releaseVolumesLocked(names []string) {
	for _, n := range names {
		if d.volUsers[n] == 0 {
			continue // not one with options
		}
		if d.volUsers[n]--; d.volUsers[n] == 0 {
			delete(d.volUsers, n)
			unmountVolume(d.volumeData(n))
		}
	}
}

func mountVolume(v *volumeRecord, target string) error {
	flags, data := runtime.MountOptions(v.Options["o"])
	dev := v.Options["device"]
	if flags&unix.MS_BIND != 0 {
		// As mount(8): a bind takes its read-only flag on a remount.
		if err := unix.Mount(dev, target, "", flags&^unix.MS_RDONLY, ""); err != nil {
			return err
		}
		if flags&unix.MS_RDONLY != 0 {
			return unix.Mount("", target, "", flags|unix.MS_REMOUNT, "")
		}
		return nil
	}
	return unix.Mount(dev, target, v.Options["type"], flags, data)
}

func unmountVolume(target string) {
	_ = unix.Unmount(target, unix.MNT_DETACH)
}
