package snapshot

import (
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// MountAll mounts ms in order on target.
func MountAll(ms []Mount, target string) error {
	for _, m := range ms {
		var flags uintptr
		var data []string
		for _, o := range m.Options {
			switch o {
			case "ro":
				flags |= unix.MS_RDONLY
			case "rw":
			case "bind":
				flags |= unix.MS_BIND
			case "rbind":
				flags |= unix.MS_BIND | unix.MS_REC
			default:
				data = append(data, o)
			}
		}
		typ := m.Type
		if typ == "bind" {
			typ, flags = "", flags|unix.MS_BIND
		}
		err := unix.Mount(m.Source, target, typ, flags&^unix.MS_RDONLY, strings.Join(data, ","))
		if err == unix.EINVAL && slices.Contains(data, volatile) { // a kernel before 5.10
			err = unix.Mount(m.Source, target, typ, flags&^unix.MS_RDONLY, strings.Join(slices.DeleteFunc(data, func(o string) bool { return o == volatile }), ","))
		}
		if err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Type, target, err)
		}
		// A bind mount takes its read-only flag only on a remount.
		if flags&unix.MS_RDONLY != 0 {
			if err := unix.Mount("", target, "", flags|unix.MS_REMOUNT, ""); err != nil {
				_ = unix.Unmount(target, unix.MNT_DETACH)
				return fmt.Errorf("remount %s read-only: %w", target, err)
			}
		}
	}
	return nil
}

const volatile = "volatile"

// Volatile returns ms with its overlay mounts volatile: the kernel skips
// every sync of their upper layer, the one at unmount included (~4 ms
// here, a sync of the whole file system the layer lives on). For a layer
// that nothing needs once its container is gone (docker run --rm): after
// a crash the kernel refuses to mount it again, and nobody asks it to.
// Kernels without the option (before 5.10) mount without it.
func Volatile(ms []Mount) []Mount {
	out := make([]Mount, len(ms))
	for i, m := range ms {
		out[i] = m
		if m.Type == "overlay" && slices.ContainsFunc(m.Options, func(o string) bool { return strings.HasPrefix(o, "upperdir=") }) {
			out[i].Options = append(slices.Clone(m.Options), volatile)
		}
	}
	return out
}

// Unmount undoes MountAll.
func Unmount(target string) error {
	for {
		if err := unix.Unmount(target, 0); err != nil {
			if err == unix.EINVAL { // not a mount point (any more)
				return nil
			}
			return fmt.Errorf("unmount %s: %w", target, err)
		}
	}
}

// UnmountBelow detaches every mount at or under dir, the deepest first
// (what an interrupted build, or another tool's storage, left there).
func UnmountBelow(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		unix.Unmount(p, unix.MNT_DETACH)
	}
}
