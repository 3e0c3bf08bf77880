package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
	"unsafe"

	"github.com/tent-project/tent/internal/vm/wire"
	"golang.org/x/sys/unix"
)

// Setting up the guest: its root, modules, network and the port to the host.

// moduleGroups are modules loaded only when a VM needs them: its
// network's, and 9p's for volumes and binds. The others load at boot.
// (Under TCG a module costs its size in boot time: these two groups are
// a fifth of the modules' bytes.) The disk's driver loads with the
// configuration: a template's guest (vm.Host.Template) must not have
// probed a disk, whose size and blocks are each VM's own.
var moduleGroups = map[string]string{
	"failover": "net", "net_failover": "net", "virtio_net": "net",
	"netfs": "9p", "fscache": "9p", "9pnet": "9p", "9pnet_virtio": "9p", "9p": "9p",
	"virtio_blk": "disk",
}

// setClockAndSeed sets the guest's clock to the host's and mixes the
// host's randomness into the guest's generator, reseeding it: a VM
// started from a template has the template's clock and generator state,
// which every VM of that template shares.
func setClockAndSeed(p *wire.Process) {
	if p.Time > 0 {
		tv := unix.NsecToTimeval(p.Time)
		unix.Settimeofday(&tv)
	}
	if len(p.Seed) == 0 {
		return
	}
	f, err := os.OpenFile("/dev/urandom", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	defer f.Close()
	// struct rand_pool_info: entropy_count (bits), buf_size, then the bytes.
	buf := make([]byte, 8+len(p.Seed))
	binary.NativeEndian.PutUint32(buf, uint32(8*len(p.Seed)))
	binary.NativeEndian.PutUint32(buf[4:], uint32(len(p.Seed)))
	copy(buf[8:], p.Seed)
	unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDADDENTROPY, uintptr(unsafe.Pointer(&buf[0])))
	unix.Syscall(unix.SYS_IOCTL, f.Fd(), unix.RNDRESEEDCRNG, 0)
}

// initramfs is the agent's own root, kept open from boot: modules loaded
// once the agent has moved into the container's root (a network's, on
// the host's first word about it) are read through it.
var initramfs *os.File

// loadModules loads the initramfs's modules of group ("": those of no
// group), in the list's order (each after those it needs).
func loadModules(group string) error {
	if initramfs == nil {
		var err error
		if initramfs, err = os.Open("/"); err != nil {
			return err
		}
	}
	root := int(initramfs.Fd())
	list, err := readAt(root, ModulesList)
	if err != nil {
		return nil // a kernel with the drivers built in
	}
	for _, m := range strings.Fields(string(list)) {
		if moduleGroups[strings.TrimSuffix(filepath.Base(m), ".ko")] != group {
			continue
		}
		fd, err := unix.Openat(root, strings.TrimPrefix(m, "/"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open %s: %w", m, err)
		}
		err = unix.FinitModule(fd, "", 0)
		unix.Close(fd)
		if err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("load %s: %w", filepath.Base(m), err)
		}
	}
	return nil
}

// readAt reads the file at path below the directory dirfd.
func readAt(dirfd int, path string) ([]byte, error) {
	fd, err := unix.Openat(dirfd, strings.TrimPrefix(path, "/"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	return io.ReadAll(f)
}

func openPort() (*os.File, error) {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		names, _ := filepath.Glob("/sys/class/virtio-ports/*/name")
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil && strings.TrimSpace(string(b)) == PortName {
				dev := "/dev/" + filepath.Base(filepath.Dir(n))
				if f, err := os.OpenFile(dev, os.O_RDWR, 0); err == nil {
					return f, nil
				}
			}
		}
	}
	return nil, fmt.Errorf("no virtio-serial port named %s", PortName)
}

// mountRoot mounts the container's disk at /root with what a container
// has below its root, writes the engine's files, and makes it the root.
func mountRoot(p *wire.Process) error {
	for _, m := range p.Mounts {
		if m.Tag != "" { // a volume or bind over 9p
			if err := loadModules("9p"); err != nil {
				return err
			}
			break
		}
	}
	os.MkdirAll(newRoot, 0o755)
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if err = unix.Mount("/dev/vda", newRoot, "ext4", 0, ""); err == nil || !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENXIO) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("mount the root disk: %w", err)
	}
	for path, content := range p.Files {
		dst := filepath.Join(newRoot, filepath.Clean("/"+path))
		os.MkdirAll(filepath.Dir(dst), 0o755)
		os.Remove(dst) // a symbolic link in the image is replaced, not followed
		if err := os.WriteFile(dst, content, 0o644); err != nil {
			return err
		}
	}
	mounts := []struct {
		fs, dir, opts string
		flags         uintptr
	}{
		{"proc", "proc", "", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
		{"sysfs", "sys", "", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV | unix.MS_RDONLY},
		{"devtmpfs", "dev", "", unix.MS_NOSUID},
		{"devpts", "dev/pts", "newinstance,ptmxmode=0666,mode=0620,gid=5", unix.MS_NOSUID | unix.MS_NOEXEC},
		{"tmpfs", "dev/shm", "mode=1777,size=65536k", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
		{"mqueue", "dev/mqueue", "", unix.MS_NOSUID | unix.MS_NOEXEC | unix.MS_NODEV},
	}
	for _, m := range mounts {
		dir := filepath.Join(newRoot, m.dir)
		os.MkdirAll(dir, 0o755)
		if err := unix.Mount(m.fs, dir, m.fs, m.flags, m.opts); err != nil {
			return fmt.Errorf("mount %s: %w", m.dir, err)
		}
	}
	for _, m := range p.Mounts {
		dst := filepath.Join(newRoot, filepath.Clean("/"+m.Dest))
		mkdir := dst
		if m.File != "" {
			mkdir = filepath.Dir(dst)
		}
		if err := os.MkdirAll(mkdir, 0o755); err != nil {
			return fmt.Errorf("mount point %s: %w", m.Dest, err)
		}
		var flags uintptr
		if m.ReadOnly {
			flags |= unix.MS_RDONLY
		}
		var err error
		switch {
		case m.File != "":
			err = mountFile(m, dst, flags)
		case m.Tag != "":
			err = unix.Mount(m.Tag, dst, "9p", flags, shareOptions)
		default:
			err = unix.Mount("tmpfs", dst, "tmpfs", flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, m.Options)
		}
		if err != nil {
			return fmt.Errorf("mount %s: %w", m.Dest, err)
		}
	}
	ptmx := filepath.Join(newRoot, "dev/ptmx")
	os.Remove(ptmx)
	os.Symlink("pts/ptmx", ptmx)
	if p.ReadonlyRootfs {
		if err := unix.Mount("", newRoot, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, ""); err != nil {
			return fmt.Errorf("read-only root: %w", err)
		}
	}
	if err := unix.Chroot(newRoot); err != nil {
		return err
	}
	if p.Hostname != "" {
		unix.Sethostname([]byte(p.Hostname))
	}
	return os.Chdir("/")
}

// shareOptions are a 9p share's mount options.
const shareOptions = "trans=virtio,version=9p2000.L,msize=262144"

// sharesDir is where the shares of single files are mounted, in the
// agent's own root (the workload's is below newRoot).
const sharesDir = "/shares"

// mountFile binds one file of a 9p share (which the host made of that
// file alone) at dst, made an empty file if it is missing.
func mountFile(m wire.Mount, dst string, flags uintptr) error {
	share := filepath.Join(sharesDir, m.Tag)
	if err := os.MkdirAll(share, 0o700); err != nil {
		return err
	}
	if err := unix.Mount(m.Tag, share, "9p", 0, shareOptions); err != nil {
		return err
	}
	if f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
		f.Close()
	}
	if err := unix.Mount(filepath.Join(share, m.File), dst, "", unix.MS_BIND, ""); err != nil {
		return err
	}
	if flags&unix.MS_RDONLY != 0 {
		return unix.Mount("", dst, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY, "")
	}
	return nil
}
