package vmtask

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
	"golang.org/x/sys/unix"
)

// A VM container's disk, read and written from the host while its VM
// does not use it (or, read, while it runs): export, cp, diff, commit.

// MountDisk mounts the file system of the container's disk read-only at
// dir (export, cp, diff, commit): a raw copy of its overlay (qemu-img
// reads the backing chain; -U lets it read the disk of a running VM) on
// a loop device. The copy is mounted writable first, so that ext4
// replays its journal into it, as after a crash (a VM killed, or still
// running, leaves a journal to replay; mounted with noload, the file
// system showed metadata half-written: "lstat ...: bad message"), then
// read-only. The function returned unmounts it and removes the copy.
func (r *Runtime) MountDisk(paths task.Paths, dir string) (func(), error) {
	disk := diskOf(paths)
	if _, err := os.Stat(disk); err != nil {
		return nil, fmt.Errorf("the container has no disk yet (it never ran): %w", errdefs.ErrConflict)
	}
	raw := disk + ".export.raw"
	os.Remove(raw)
	if out, err := exec.Command(r.host.QemuImg, "convert", "-U", "-f", "qcow2", "-O", "raw", disk, raw).CombinedOutput(); err != nil {
		os.Remove(raw)
		return nil, fmt.Errorf("read the container's disk: %v: %s", err, out)
	}
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,noatime", raw, dir).CombinedOutput(); err != nil {
		os.Remove(raw)
		return nil, fmt.Errorf("mount the container's disk: %v: %s", err, out)
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOATIME, ""); err != nil {
		unix.Unmount(dir, unix.MNT_DETACH)
		os.Remove(raw)
		return nil, fmt.Errorf("mount the container's disk read-only: %w", err)
	}
	return func() {
		unix.Unmount(dir, unix.MNT_DETACH) // the loop device goes with it (autoclear)
		os.Remove(raw)
	}, nil
}

// Sync has the guest of the container's running VM write what it holds
// (its page cache) to its disk, so that the disk read from the host
// (MountDisk) is its file system as the guest sees it.
func (r *Runtime) Sync(paths task.Paths) error {
	if _, err := os.Stat(filepath.Join(paths.Dir, pausedName)); err == nil {
		return fmt.Errorf("the VM is paused (its guest cannot write its files to its disk): unpause it first: %w", errdefs.ErrConflict)
	}
	err := monitor.Sync(paths.Dir)
	if errors.Is(err, monitor.ErrGone) {
		return nil // it has ended: its disk is all there is
	}
	return err
}

// MountBase mounts, read-only at dir, the base disk the container's disk
// is made over (its image's, shared with the image's other VMs): what
// the container's disk changed is the difference (diff, commit).
func (r *Runtime) MountBase(paths task.Paths, dir string) (func(), error) {
	out, err := exec.Command(r.host.QemuImg, "info", "-U", "--output=json", diskOf(paths)).Output()
	if err != nil {
		return nil, fmt.Errorf("the container's disk: %v", err)
	}
	var info struct {
		Backing string `json:"full-backing-filename"`
	}
	if err := json.Unmarshal(out, &info); err != nil || info.Backing == "" {
		return nil, fmt.Errorf("the container's disk has no base disk (%v)", err)
	}
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop,ro,noload", info.Backing, dir).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("mount the image's base disk: %v: %s", err, out)
	}
	return func() { unix.Unmount(dir, unix.MNT_DETACH) }, nil
}

// MountDiskWritable mounts the file system of a stopped VM container's
// disk writable at dir (cp into it): qemu-storage-daemon exports the
// qcow2 overlay, backing chain and all, as a raw file through FUSE, and
// that file is mounted on a loop device, so what is written goes into
// the overlay alone, as the guest's writes do. The function returned
// unmounts it and ends the export (which writes the overlay out).
func (r *Runtime) MountDiskWritable(paths task.Paths, dir string) (func(), error) {
	disk := diskOf(paths)
	if _, err := os.Stat(disk); err != nil {
		return nil, fmt.Errorf("the container has no disk yet (it never ran): %w", errdefs.ErrConflict)
	}
	return r.mountWritable(disk, dir)
}

// EnsureDisk makes the disk of a VM container that never ran (its first
// start would), so that cp can write into it: docker create, cp, start.
// rootfs are its root file system's mounts.
func (r *Runtime) EnsureDisk(id string, paths task.Paths, rootfs []task.Mount) error {
	disk := diskOf(paths)
	if _, err := os.Stat(disk); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(disk), 0o700); err != nil {
		return err
	}
	root, err := os.MkdirTemp(filepath.Dir(disk), "rootfs-")
	if err != nil {
		return err
	}
	defer os.Remove(root)
	if err := snapshot.MountAll(rootfs, root); err != nil {
		return err
	}
	defer snapshot.Unmount(root)
	return r.makeDisk(id, rootfs, root, disk)
}

func (r *Runtime) mountWritable(disk, dir string) (func(), error) {
	qsd, err := exec.LookPath("qemu-storage-daemon")
	if err != nil {
		return nil, fmt.Errorf("writing into a VM's disk needs qemu-storage-daemon (apt-get install qemu-system-common): %w", errdefs.ErrNotImplemented)
	}
	export := disk + ".fuse"
	if err := os.WriteFile(export, nil, 0o600); err != nil {
		return nil, err
	}
	opt := strings.NewReplacer(",", ",,").Replace // QEMU's option syntax
	cmd := exec.Command(qsd, "--blockdev", "driver=file,node-name=file,filename="+opt(disk),
		"--blockdev", "driver=qcow2,node-name=disk,file=file",
		"--export", "type=fuse,id=export,node-name=disk,writable=on,mountpoint="+opt(export))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		os.Remove(export)
		return nil, err
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	stop := func() {
		cmd.Process.Signal(syscall.SIGTERM) // it unexports and flushes the overlay
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		unix.Unmount(export, unix.MNT_DETACH) // if it died with the export up
		os.Remove(export)
	}
	// The export is up once the file shows the disk's size.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if fi, err := os.Stat(export); err == nil && fi.Size() > 0 {
			break
		}
		select {
		case <-exited:
			stop()
			return nil, fmt.Errorf("export the container's disk: %s", strings.TrimSpace(stderr.String()))
		default:
		}
		if time.Now().After(deadline) {
			stop()
			return nil, errors.New("export the container's disk: qemu-storage-daemon did not answer within 10 s")
		}
	}
	if out, err := exec.Command("mount", "-t", "ext4", "-o", "loop", export, dir).CombinedOutput(); err != nil {
		stop()
		return nil, fmt.Errorf("mount the container's disk: %v: %s", err, out)
	}
	return func() {
		if err := unix.Unmount(dir, 0); err != nil { // a clean unmount writes the file system out
			unix.Unmount(dir, unix.MNT_DETACH)
		}
		stop()
	}, nil
}
