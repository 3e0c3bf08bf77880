// Package mounts turns a container's -v, --mount and VOLUME settings into
// the mount points the engine keeps in its record (binds and volumes,
// with docker's syntax, defaults and errors), and those into OCI mounts,
// inspect's Mounts and the volumes they make and fill.
package mounts

import (
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	vol "github.com/tent-project/tent/internal/volume"
	"golang.org/x/sys/unix"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/snapshot"
)

// A Point is a bind or volume mount of a container, decided at create
// and kept in its record.
type Point struct {
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
func bindOptions(m *Point, mt mount.Mount) error {
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

// Parse reads -v (Binds), --mount (Mounts) and the config's
// volumes (the image's VOLUMEs included) into mount points; anonymous
// volumes have no name yet. --mount tmpfs entries go to hc.Tmpfs.
// roNonRecursive: read-only mounts are so at their top only (API < 1.44).
func Parse(cfg *container.Config, hc *container.HostConfig, roNonRecursive bool) ([]Point, error) {
	var out []Point
	seen := map[string]bool{}
	add := func(m Point) error {
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
		m := Point{Type: mount.TypeVolume, RW: true, Destination: parts[0]}
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
		m := Point{Type: mt.Type, Destination: mt.Target, RW: !mt.ReadOnly}
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
		if err := add(Point{Type: mount.TypeVolume, Destination: dst, RW: true}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// SetUp makes the volumes that mount points name (and names the
// anonymous ones), and returns the ones it made, for undoing; the volume
// store is locked.
func SetUp(vols *vol.Store, mps []Point) (made []string, err error) {
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
			v, created, err := vols.CreateLocked(m.Name, labels, m.VolumeOptions)
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

// API describes the mount points as inspect's Mounts.
func API(vols *vol.Store, mps []Point) []container.MountPoint {
	out := []container.MountPoint{}
	for _, m := range mps {
		mp := container.MountPoint{Type: m.Type, Destination: m.Destination, RW: m.RW, Mode: m.Mode,
			Propagation: mount.Propagation(m.Propagation), Source: m.Source}
		if m.Type == mount.TypeVolume {
			mp.Name, mp.Source, mp.Driver = m.Name, vols.Path(m.Name), "local"
		}
		out = append(out, mp)
	}
	return out
}

// Spec are the OCI mounts of the mount points. A -v bind source that
// does not exist is made, as docker does.
func Spec(vols *vol.Store, mps []Point) ([]specs.Mount, error) {
	var out []specs.Mount
	for _, m := range mps {
		src := m.Source
		if m.Type == mount.TypeVolume {
			src = vols.Path(m.Name)
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

// CopyUp fills each empty volume with what the image has at its mount
// path, once, as docker does (not with nocopy), and marks it copied; the
// root file system is mounted at rootfs.
func CopyUp(vols *vol.Store, mps []Point, rootfs string) error {
	for i := range mps {
		m := &mps[i]
		if m.Type != mount.TypeVolume || m.NoCopy || m.Copied {
			continue
		}
		m.Copied = true
		data := vols.Path(m.Name)
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

// Of are a container's mount points: those recorded, or for a record
// from before mount points were kept, its -v binds.
func Of(recorded []Point, binds []string) []Point {
	if recorded == nil && len(binds) > 0 {
		mps, _ := Parse(&container.Config{}, &container.HostConfig{Binds: binds}, true)
		return mps
	}
	return recorded
}

// VolumeNames are the volumes that the mount points mount.
func VolumeNames(mps []Point) []string {
	var names []string
	for _, m := range mps {
		if m.Type == mount.TypeVolume {
			names = append(names, m.Name)
		}
	}
	return names
}

// BindAll binds the OCI mounts binds (mount points' Spec) into root, a
// stopped container's file system mounted on a view of the daemon's.
func BindAll(root string, binds []specs.Mount) error {
	for _, m := range binds {
		if err := bindInto(root, m.Source, m.Destination, m.Options); err != nil {
			return fmt.Errorf("mount %s at %s: %w", m.Source, m.Destination, err)
		}
	}
	return nil
}

// bindInto binds src at dest inside root (dest resolved in root, made if
// missing), read-only if opts say so. Nothing of the container's runs
// while it is stopped, so the resolution cannot race it.
func bindInto(root, src, dest string, opts []string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	target, err := securejoin.SecureJoin(root, dest)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		err = os.MkdirAll(target, 0o755)
	} else if err = os.MkdirAll(filepath.Dir(target), 0o755); err == nil {
		var f *os.File
		if f, err = os.OpenFile(target, os.O_CREATE|unix.O_NOFOLLOW, 0o644); err == nil {
			f.Close()
		}
	}
	if err != nil {
		return err
	}
	if err := unix.Mount(src, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	for _, o := range opts {
		if o == "ro" {
			return unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, "")
		}
	}
	return nil
}
