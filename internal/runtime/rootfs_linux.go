package runtime

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/cgroups"
	"golang.org/x/sys/unix"
)

// defaultDevices are created in every container whose /dev is not a bind
// mount of the host's, as with runc.
var defaultDevices = []specs.LinuxDevice{
	{Path: "/dev/null", Type: "c", Major: 1, Minor: 3},
	{Path: "/dev/zero", Type: "c", Major: 1, Minor: 5},
	{Path: "/dev/full", Type: "c", Major: 1, Minor: 7},
	{Path: "/dev/random", Type: "c", Major: 1, Minor: 8},
	{Path: "/dev/urandom", Type: "c", Major: 1, Minor: 9},
	{Path: "/dev/tty", Type: "c", Major: 5, Minor: 0},
}

// mountRootfs prepares the new root at cfg.Rootfs: propagation, the mounts
// of the spec, and /dev. It runs before pivot_root, with host paths visible.
func mountRootfs(cfg *initConfig) error {
	spec, rootfs := cfg.Spec, cfg.Rootfs
	if cfg.Mounts != mountsShared { // the runtime bound the root itself (bindSharedRoot)
		prop := uintptr(unix.MS_SLAVE | unix.MS_REC)
		if p, ok := propagationFlags[spec.Linux.RootfsPropagation]; ok {
			prop = p
		}
		if err := unix.Mount("", "/", "", prop, ""); err != nil {
			return fmt.Errorf("make / %s: %w", spec.Linux.RootfsPropagation, err)
		}
		if err := makeParentPrivate(rootfs); err != nil {
			return err
		}
		if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind rootfs %s: %w", rootfs, err)
		}
	}
	for _, m := range spec.Mounts {
		if err := mountOne(cfg, m); err != nil {
			return fmt.Errorf("mount %s on %s: %w", m.Source, m.Destination, err)
		}
	}
	if devIsBound(spec) {
		return nil
	}
	devices := append(append([]specs.LinuxDevice(nil), defaultDevices...), spec.Linux.Devices...)
	for _, d := range devices {
		if err := createDevice(rootfs, d, cfg.UserNS); err != nil {
			return fmt.Errorf("device %s: %w", d.Path, err)
		}
	}
	return devSymlinks(rootfs)
}

// makeParentPrivate makes the mount holding rootfs private: pivot_root
// refuses a new root whose parent mount is shared.
func makeParentPrivate(rootfs string) error {
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	best := "/"
	for _, line := range strings.Split(string(mounts), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMountPath(f[4])
		if (rootfs == mp || strings.HasPrefix(rootfs, strings.TrimSuffix(mp, "/")+"/")) && len(mp) > len(best) {
			best = mp
		}
	}
	if err := unix.Mount("", best, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make %s private: %w", best, err)
	}
	return nil
}

// unescapeMountPath undoes the octal escapes of /proc/self/mountinfo.
func unescapeMountPath(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var n int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &n); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func devIsBound(spec *specs.Spec) bool {
	for _, m := range spec.Mounts {
		if filepath.Clean(m.Destination) == "/dev" && (m.Type == "bind" || hasOption(m.Options, "bind") || hasOption(m.Options, "rbind")) {
			return true
		}
	}
	return false
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// mountOne performs one entry of the spec's mounts. The destination is
// resolved inside the rootfs, so a symlink in the image cannot aim a mount
// at the host.
func mountOne(cfg *initConfig, m specs.Mount) error {
	o := parseMountOptions(m.Options)
	flags := o.flags
	dest, err := securejoin.SecureJoin(cfg.Rootfs, m.Destination)
	if err != nil {
		return err
	}
	typ := m.Type
	switch {
	case typ == "bind" || flags&unix.MS_BIND != 0:
		if err := bindMount(cfg, m.Source, dest, flags); err != nil {
			return err
		}
	case typ == "cgroup":
		if err := mountCgroups(cfg, dest, flags); err != nil {
			return err
		}
	default:
		if err := os.MkdirAll(dest, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.Source, dest, typ, flags, o.data); err != nil {
			return err
		}
	}
	for _, p := range o.prop {
		if err := unix.Mount("", dest, "", p, ""); err != nil {
			return fmt.Errorf("propagation: %w", err)
		}
	}
	if o.recursive {
		if err := unix.MountSetattr(-1, dest, unix.AT_RECURSIVE, &o.rec); err != nil {
			return fmt.Errorf("recursive mount options %v of %s (mount_setattr, Linux 5.12+): %w", m.Options, m.Destination, err)
		}
	}
	return nil
}

func bindMount(cfg *initConfig, src, dest string, flags uintptr) error {
	if !filepath.IsAbs(src) {
		src = filepath.Join(cfg.State.Bundle, src)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := createMountpoint(dest, fi.IsDir()); err != nil {
		return err
	}
	if err := unix.Mount(src, dest, "", unix.MS_BIND|(flags&unix.MS_REC), ""); err != nil {
		return err
	}
	if flags&^(unix.MS_BIND|unix.MS_REC|unix.MS_REMOUNT) != 0 {
		return remount(dest, flags)
	}
	return nil
}

// remount applies flags to an existing bind mount, keeping the flags the
// kernel locks in a user namespace (nosuid, nodev, noexec) where they are set.
func remount(dest string, flags uintptr) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dest, &st); err == nil {
		for _, l := range []struct{ st, ms uintptr }{
			{unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV}, {unix.ST_NOEXEC, unix.MS_NOEXEC},
		} {
			if uintptr(st.Flags)&l.st != 0 {
				flags |= l.ms
			}
		}
	}
	if err := unix.Mount("", dest, "", flags|unix.MS_BIND|unix.MS_REMOUNT, ""); err != nil {
		return fmt.Errorf("remount %s: %w", dest, err)
	}
	return nil
}

// createMountpoint makes dest a directory or an empty file.
func createMountpoint(dest string, dir bool) error {
	if dir {
		return os.MkdirAll(dest, 0o755)
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	f, err := os.OpenFile(dest, os.O_CREATE|os.O_RDONLY|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		if errors.Is(err, unix.EISDIR) {
			return nil
		}
		return err
	}
	return f.Close()
}

// mountCgroups mounts the container's view of the cgroup file system. With
// a cgroup namespace the kernel roots the view at the container's cgroup;
// without one, the container's own cgroup directories are bound instead.
func mountCgroups(cfg *initConfig, dest string, flags uintptr) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return err
	}
	if cgroups.Unified() {
		if cfg.CgroupNS {
			return unix.Mount("cgroup2", dest, "cgroup2", flags, "")
		}
		return bindMount(cfg, filepath.Join("/sys/fs/cgroup", cfg.CgroupPath), dest, flags|unix.MS_BIND)
	}
	hs, err := cgroups.V1Hierarchies()
	if err != nil {
		return err
	}
	if err := unix.Mount("tmpfs", dest, "tmpfs", flags&^unix.MS_RDONLY, "mode=755"); err != nil {
		return err
	}
	for _, h := range hs {
		name := filepath.Base(h.Mount)
		sub := filepath.Join(dest, name)
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		if cfg.CgroupNS {
			err = unix.Mount("cgroup", sub, "cgroup", flags, strings.Join(h.Controllers, ","))
		} else {
			err = bindMount(cfg, filepath.Join(h.Mount, cfg.CgroupPath), sub, flags|unix.MS_BIND)
		}
		if err != nil {
			return fmt.Errorf("cgroup %s: %w", name, err)
		}
		if strings.Contains(name, ",") {
			for _, c := range strings.Split(name, ",") {
				_ = os.Symlink(name, filepath.Join(dest, c))
			}
		}
	}
	if flags&unix.MS_RDONLY != 0 {
		return unix.Mount("", dest, "", flags|unix.MS_REMOUNT, "mode=755")
	}
	return nil
}

// createDevice makes a device node in the container's /dev, or bind mounts
// the host's node where mknod is not allowed (in a user namespace).
func createDevice(rootfs string, d specs.LinuxDevice, userns bool) error {
	dest, err := securejoin.SecureJoin(rootfs, d.Path)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dest), 0o755); err != nil {
		return err
	}
	if userns {
		if err := createMountpoint(dest, false); err != nil {
			return err
		}
		return unix.Mount(d.Path, dest, "", unix.MS_BIND, "")
	}
	mode := uint32(0o666)
	if d.FileMode != nil {
		mode = uint32(*d.FileMode & 0o7777)
	}
	switch d.Type {
	case "c", "u":
		mode |= unix.S_IFCHR
	case "b":
		mode |= unix.S_IFBLK
	case "p":
		mode |= unix.S_IFIFO
	default:
		return fmt.Errorf("unknown device type %q", d.Type)
	}
	_ = os.Remove(dest)
	if err := unix.Mknod(dest, mode, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor)))); err != nil {
		return err
	}
	// mknod honours the umask; the node must have exactly the mode asked.
	if err := unix.Chmod(dest, mode&0o7777); err != nil {
		return err
	}
	uid, gid := 0, 0
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	return unix.Lchown(dest, uid, gid)
}

// devSymlinks adds the standard links of /dev.
func devSymlinks(rootfs string) error {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"},
		{"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"},
		{"/proc/self/fd/2", "/dev/stderr"},
		{"pts/ptmx", "/dev/ptmx"},
	}
	if _, err := os.Stat("/proc/kcore"); err == nil {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	for _, l := range links {
		dest, err := securejoin.SecureJoin(rootfs, l[1])
		if err != nil {
			return err
		}
		if l[1] == "/dev/ptmx" {
			_ = os.Remove(dest)
		}
		if err := os.Symlink(l[0], dest); err != nil && !errors.Is(err, os.ErrExist) {
			return fmt.Errorf("symlink %s: %w", l[1], err)
		}
	}
	return nil
}

// pivotRoot makes rootfs the root of the mount namespace and detaches the
// old root, using pivot_root(".", ".") so no directory for the old root is needed.
func pivotRoot(rootfs string) error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(rootfs, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	// The old root must not propagate its unmount to the host.
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount old root: %w", err)
	}
	return unix.Chdir("/")
}

// moveRoot is the --no-pivot way: move the rootfs over / and chroot into it.
func moveRoot(rootfs string) error {
	if err := unix.Chdir(rootfs); err != nil {
		return err
	}
	if err := unix.Mount(rootfs, "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move rootfs: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return err
	}
	return unix.Chdir("/")
}

// chrootTo roots the process at rootfs without touching its mount
// namespace, for a container that has none of its own.
func chrootTo(rootfs string) error {
	if err := unix.Chroot(rootfs); err != nil {
		return fmt.Errorf("chroot %s: %w", rootfs, err)
	}
	return unix.Chdir("/")
}

// bindSharedRoot makes the root of a container without a mount namespace
// of its own: a private recursive bind of rootfs onto itself, under which
// the init mounts and which a read-only root remounts, so that the
// runtime's namespace sees none of it propagate and delete removes all of
// it at once (unbindSharedRoot). It returns the bind's mount ID.
func bindSharedRoot(rootfs string) (uint64, error) {
	if err := unix.Mount(rootfs, rootfs, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return 0, fmt.Errorf("bind rootfs %s: %w", rootfs, err)
	}
	id, err := mountID(rootfs)
	if err == nil {
		err = unix.Mount("", rootfs, "", unix.MS_PRIVATE|unix.MS_REC, "")
	}
	if err != nil {
		unix.Unmount(rootfs, unix.MNT_DETACH)
		return 0, fmt.Errorf("bind rootfs %s: %w", rootfs, err)
	}
	return id, nil
}

// unbindSharedRoot detaches what bindSharedRoot made, mounts below
// included, if the mount at rootfs is still that one (id): whatever was
// mounted there before the container stays.
func unbindSharedRoot(rootfs string, id uint64) error {
	if cur, err := mountID(rootfs); err != nil || cur != id {
		return nil
	}
	if err := unix.Unmount(rootfs, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmount rootfs %s: %w", rootfs, err)
	}
	return nil
}

// mountID is the ID of the mount path is on (statx, Linux 5.8).
func mountID(path string) (uint64, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_MNT_ID, &st); err != nil {
		return 0, fmt.Errorf("statx %s: %w", path, err)
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return 0, fmt.Errorf("statx %s: no mount ID (kernel before 5.8)", path)
	}
	return st.Mnt_id, nil
}

// finishRootfs runs after the pivot: sysctls, masked and read-only paths,
// the root's propagation and read-only flag.
func finishRootfs(spec *specs.Spec) error {
	for key, value := range spec.Linux.Sysctl {
		p := filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/"))
		if err := os.WriteFile(p, []byte(value), 0); err != nil {
			return fmt.Errorf("sysctl %s=%s: %w", key, value, err)
		}
	}
	for _, p := range spec.Linux.ReadonlyPaths {
		if err := readonlyPath(p); err != nil {
			return err
		}
	}
	for _, p := range spec.Linux.MaskedPaths {
		if err := maskPath(p); err != nil {
			return err
		}
	}
	if p, ok := propagationFlags[spec.Linux.RootfsPropagation]; ok {
		if err := unix.Mount("", "/", "", p, ""); err != nil {
			return fmt.Errorf("rootfs propagation: %w", err)
		}
	}
	if spec.Root.Readonly {
		if err := remount("/", unix.MS_RDONLY); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	return nil
}

func readonlyPath(p string) error {
	if err := unix.Mount(p, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("readonly path %s: %w", p, err)
	}
	return remount(p, unix.MS_RDONLY|unix.MS_REC)
}

// maskPath hides p: a directory under an empty read-only tmpfs, a file under /dev/null.
func maskPath(p string) error {
	err := unix.Mount("/dev/null", p, "", unix.MS_BIND, "")
	if errors.Is(err, unix.ENOTDIR) {
		err = unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY, "size=0k")
	}
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("mask %s: %w", p, err)
	}
	return nil
}
