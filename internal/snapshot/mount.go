package snapshot

import (
	"fmt"
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
		if err := unix.Mount(m.Source, target, typ, flags&^unix.MS_RDONLY, strings.Join(data, ",")); err != nil {
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
