package spec

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/blkiodev"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/tent-project/tent/internal/errdefs"
)

// deviceRule is docker's --device-cgroup-rule: a type, major:minor (each
// may be *) and access.
var deviceRule = regexp.MustCompile(`^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$`)

// ValidateDevices checks --device and --device-cgroup-rule as docker does
// at create; the device files themselves are read when the container
// starts (a device may appear in between).
func ValidateDevices(hc *container.HostConfig) error {
	for _, d := range hc.Devices {
		if !validAccess(d.CgroupPermissions) {
			return fmt.Errorf("invalid device mode: %s: %w", d.CgroupPermissions, errdefs.ErrInvalidArgument)
		}
		if d.PathOnHost == "" {
			return fmt.Errorf("invalid device: no path on the host: %w", errdefs.ErrInvalidArgument)
		}
		if d.PathInContainer != "" && !filepath.IsAbs(d.PathInContainer) {
			return fmt.Errorf("invalid device: %s: the path in the container must be absolute: %w", d.PathInContainer, errdefs.ErrInvalidArgument)
		}
	}
	for _, r := range hc.DeviceCgroupRules {
		if _, err := parseDeviceRule(r); err != nil {
			return err
		}
	}
	return nil
}

func validAccess(a string) bool {
	if a == "" {
		return true
	}
	for _, c := range a {
		if !strings.ContainsRune("rwm", c) {
			return false
		}
	}
	return len(a) <= 3
}

func parseDeviceRule(r string) (specs.LinuxDeviceCgroup, error) {
	m := deviceRule.FindStringSubmatch(r)
	if m == nil {
		return specs.LinuxDeviceCgroup{}, fmt.Errorf("invalid device cgroup rule format: '%s': %w", r, errdefs.ErrInvalidArgument)
	}
	rule := specs.LinuxDeviceCgroup{Allow: true, Type: m[1], Access: m[4]}
	for i, p := range []**int64{&rule.Major, &rule.Minor} {
		if v := m[2+i]; v != "*" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return rule, fmt.Errorf("invalid device cgroup rule format: '%s': %w", r, errdefs.ErrInvalidArgument)
			}
			*p = &n
		}
	}
	return rule, nil
}

// devices adds hc's --device nodes to the spec (made in the container's
// /dev by the runtime) with their cgroup rules, and its
// --device-cgroup-rule entries, as docker: a directory on the host gives
// every device under it.
func devices(lx *specs.Linux, hc *container.HostConfig) error {
	for _, d := range hc.Devices {
		dst, access := orDefault(d.PathInContainer, d.PathOnHost), orDefault(d.CgroupPermissions, "rwm")
		found, err := hostDevices(d.PathOnHost, dst)
		if err != nil {
			return fmt.Errorf("error gathering device information while adding custom device %q: %w", d.PathOnHost, err)
		}
		for _, dev := range found {
			lx.Devices = append(lx.Devices, dev)
			major, minor := dev.Major, dev.Minor
			lx.Resources.Devices = append(lx.Resources.Devices, specs.LinuxDeviceCgroup{Allow: true, Type: dev.Type, Major: &major, Minor: &minor, Access: access})
		}
	}
	for _, r := range hc.DeviceCgroupRules {
		rule, err := parseDeviceRule(r)
		if err != nil {
			return err
		}
		lx.Resources.Devices = append(lx.Resources.Devices, rule)
	}
	return nil
}

// hostDevices reads the device node at src (symbolic links followed), or
// every device node under the directory src, as devices at dst.
func hostDevices(src, dst string) ([]specs.LinuxDevice, error) {
	resolved, err := filepath.EvalSymlinks(src)
	if err != nil {
		return nil, err
	}
	if dev, err := deviceAt(resolved, dst); err == nil {
		return []specs.LinuxDevice{dev}, nil
	} else if fi, serr := os.Stat(resolved); serr != nil || !fi.IsDir() {
		return nil, err
	}
	var out []specs.LinuxDevice
	err = filepath.WalkDir(resolved, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || e.Type()&(fs.ModeDevice|fs.ModeCharDevice) == 0 {
			return nil // as docker: what cannot be read or is no device is passed over
		}
		rel, _ := filepath.Rel(resolved, p)
		if dev, err := deviceAt(p, filepath.Join(dst, rel)); err == nil {
			out = append(out, dev)
		}
		return nil
	})
	return out, err
}

// hostDevTree is every device node of the host's /dev, for a privileged
// container, as docker gives it: not those of the pseudo-terminal, shm,
// mqueue and fd directories, nor the console (the container has its own).
func hostDevTree() []specs.LinuxDevice {
	var out []specs.LinuxDevice
	_ = filepath.WalkDir("/dev", func(p string, e fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case e.IsDir():
			if n := e.Name(); p != "/dev" && (n == "pts" || n == "shm" || n == "mqueue" || n == "fd" || strings.HasPrefix(n, ".")) {
				return filepath.SkipDir
			}
		case e.Type()&(fs.ModeDevice|fs.ModeCharDevice) != 0 && p != "/dev/console":
			if dev, err := deviceAt(p, p); err == nil {
				out = append(out, dev)
			}
		}
		return nil
	})
	return out
}

// deviceAt is the device node at path, to be made at dst.
func deviceAt(path, dst string) (specs.LinuxDevice, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return specs.LinuxDevice{}, err
	}
	var typ string
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		typ = "c"
	case unix.S_IFBLK:
		typ = "b"
	default:
		return specs.LinuxDevice{}, fmt.Errorf("not a device node")
	}
	mode := fs.FileMode(st.Mode & 0o777)
	uid, gid := st.Uid, st.Gid
	return specs.LinuxDevice{Path: dst, Type: typ, Major: int64(unix.Major(uint64(st.Rdev))), Minor: int64(unix.Minor(uint64(st.Rdev))),
		FileMode: &mode, UID: &uid, GID: &gid}, nil
}

// blockDevice is the major:minor of a block device path, for the blkio
// limits.
func blockDevice(path string) (major, minor int64, err error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, 0, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, 0, fmt.Errorf("%s is not a block device: %w", path, errdefs.ErrInvalidArgument)
	}
	return int64(unix.Major(uint64(st.Rdev))), int64(unix.Minor(uint64(st.Rdev))), nil
}

// blkioDevices are hc's per-device weights and throttles.
func blkioDevices(b *specs.LinuxBlockIO, hc *container.HostConfig) error {
	for _, w := range hc.BlkioWeightDevice {
		major, minor, err := blockDevice(w.Path)
		if err != nil {
			return err
		}
		weight := w.Weight
		b.WeightDevice = append(b.WeightDevice, specs.LinuxWeightDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Weight: &weight})
	}
	for _, t := range []struct {
		in  []*blkiodev.ThrottleDevice
		out *[]specs.LinuxThrottleDevice
	}{
		{hc.BlkioDeviceReadBps, &b.ThrottleReadBpsDevice}, {hc.BlkioDeviceWriteBps, &b.ThrottleWriteBpsDevice},
		{hc.BlkioDeviceReadIOps, &b.ThrottleReadIOPSDevice}, {hc.BlkioDeviceWriteIOps, &b.ThrottleWriteIOPSDevice},
	} {
		for _, d := range t.in {
			major, minor, err := blockDevice(d.Path)
			if err != nil {
				return err
			}
			*t.out = append(*t.out, specs.LinuxThrottleDevice{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: major, Minor: minor}, Rate: d.Rate})
		}
	}
	return nil
}
