// Package vm runs a container as a lightweight virtual machine: QEMU's
// microvm machine with a guest kernel from Debian's packages, an
// initramfs whose init is tent's agent (package agent), the image as a
// read-only base disk shared by every VM of that image and a qcow2 overlay
// per container (docs/vm.md). Package task/vm is the engine's backend on
// top of it; the VM monitor (package monitor) owns the QEMU process.
package vm

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tent-project/tent/internal/vm/wire"
)

// DefaultGuestDir is where scripts/guest-kernel.sh puts the guest kernel
// and its modules.
const DefaultGuestDir = "/usr/local/lib/tent/vm"

// Host is what VMs need from the host: QEMU, the guest's kernel and
// agent, and a directory of its own for the disks and initramfs it makes.
type Host struct {
	Qemu, QemuImg, Mkfs string
	Kernel              string // the guest kernel: an uncompressed ELF vmlinux, booted through PVH
	Modules             string // the modules the initramfs carries, with their "order" file
	Agent               string // the static tent-agent binary
	State               string

	mu     sync.Mutex
	initrd string

	probeOnce        sync.Once
	accel, accelNote string

	tpl templates
	// NoTemplates: Template refuses, so every VM boots (tentd
	// --vm-templates=false).
	NoTemplates bool
	// Log, if set, is told what the host could not do and did otherwise
	// (a template it could not make: its VMs boot).
	Log *slog.Logger
}

// NewHost finds what VMs need, or says what is missing: guestDir holds
// the kernel and modules, agent is tent-agent, state the directory for
// disks.
func NewHost(guestDir, agent, state string) (*Host, error) {
	h := &Host{Kernel: filepath.Join(guestDir, "vmlinux"), Modules: filepath.Join(guestDir, "modules"), Agent: agent, State: state}
	var missing []string
	for _, t := range []struct {
		dst  *string
		name string
	}{{&h.Qemu, "qemu-system-x86_64"}, {&h.QemuImg, "qemu-img"}, {&h.Mkfs, "mkfs.ext4"}} {
		p, err := exec.LookPath(t.name)
		if err != nil {
			missing = append(missing, t.name+" (apt-get install qemu-system-x86 qemu-utils e2fsprogs)")
		}
		*t.dst = p
	}
	if _, err := os.Stat(h.Kernel); err != nil {
		missing = append(missing, "the guest kernel "+h.Kernel+" (scripts/guest-kernel.sh)")
	}
	if _, err := os.Stat(agent); err != nil {
		missing = append(missing, "the guest agent "+agent)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("VM isolation needs %s", strings.Join(missing, ", "))
	}
	if err := os.MkdirAll(filepath.Join(state, "disks"), 0o700); err != nil {
		return nil, err
	}
	removeTemplateLeftovers(state)
	return h, nil
}

// Initrd is the guest's initramfs, made once per agent and module set.
func (h *Host) Initrd() (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.initrd != "" {
		return h.initrd, nil
	}
	// Known by its content: the agent and every module (a kernel
	// fetched again has other modules under the same names).
	sum := sha256.New()
	files := []string{h.Agent}
	if ents, err := os.ReadDir(h.Modules); err == nil {
		for _, e := range ents {
			files = append(files, filepath.Join(h.Modules, e.Name()))
		}
	}
	for _, f := range files {
		if b, err := os.ReadFile(f); err == nil {
			sum.Write([]byte(f))
			sum.Write(b)
		}
	}
	p := filepath.Join(h.State, "initrd-"+hex.EncodeToString(sum.Sum(nil))[:16]+".cpio")
	if _, err := os.Stat(p); err != nil {
		tmp, err := os.CreateTemp(h.State, "initrd-*")
		if err != nil {
			return "", err
		}
		err = writeInitramfs(tmp, h.Agent, h.Modules)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Rename(tmp.Name(), p)
		}
		if err != nil {
			os.Remove(tmp.Name())
			return "", fmt.Errorf("make the guest's initramfs: %w", err)
		}
	}
	h.initrd = p
	return p, nil
}

// BaseSize is the size of a base disk's file system: sparse, so only
// what the image holds uses the host's disk; it bounds what a container
// can write, as a container's disk would.
const BaseSize = 8 << 30

// BaseDisk is the read-only base disk of an image whose root file system
// is the directory src; key names the image's layers. It is made once
// (an ext4 file system written from src without mounting it) and shared.
func (h *Host) BaseDisk(key, src string) (string, error) {
	sum := sha256.Sum256([]byte(key))
	p := filepath.Join(h.State, "disks", hex.EncodeToString(sum[:])[:32]+".ext4")
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	tmp := p + ".tmp"
	os.Remove(tmp)
	out, err := exec.Command(h.Mkfs, "-q", "-F", "-t", "ext4", "-L", "root", "-d", src, tmp, strconv.Itoa(BaseSize>>10)+"k").CombinedOutput()
	if err == nil {
		err = os.Rename(tmp, p)
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("make the image's disk: %v: %s", err, out)
	}
	os.Chmod(p, 0o444)
	return p, nil
}

// Overlay makes the container's copy-on-write disk at path over base.
func (h *Host) Overlay(base, path string) error {
	os.Remove(path)
	out, err := exec.Command(h.QemuImg, "create", "-q", "-f", "qcow2", "-F", "raw", "-b", base, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("make the container's disk: %v: %s", err, out)
	}
	return nil
}

// TapName is the tap device behind the VM's NIC i (wire.NICs) in its
// QEMU's network namespace.
func TapName(i int) string { return "tap" + strconv.Itoa(i) }

// Machine is one VM to boot.
type Machine struct {
	Disk    string // the container's overlay
	Agent   string // the unix socket QEMU listens on for the agent's port (relative: to QEMU's directory)
	QMP     string // the unix socket of QEMU's machine protocol (relative, as Agent)
	Console string // the guest's console output, a file
	MemMiB  int
	CPUs    int
	// Net puts the VM's NICs on tap devices (TapName) that QEMU makes in
	// its own network namespace (see monitor.VMConfig.NetNS).
	Net bool
	// Shares are host directories the guest mounts over 9p (volumes and
	// binds), by tag.
	Shares []Share
	// Template: the VM starts from this template (Host.Template) rather
	// than booting: its memory is the template's, mapped copy-on-write,
	// and the monitor loads the template's state (StartFromTemplate).
	// Not with Shares.
	Template string
}

// Share is a host directory exported to the guest.
type Share struct {
	Tag, Path string
	ReadOnly  bool
}

// Command is the QEMU command that boots m: microvm under KVM where it
// boots the guest, else TCG (see Accel), no firmware (PVH entry into the
// ELF kernel), virtio-mmio disk, serial port, NIC and 9p shares.
func (h *Host) Command(m Machine) (*exec.Cmd, error) {
	if m.Template != "" && len(m.Shares) > 0 {
		return nil, errors.New("a VM with shares cannot start from a template")
	}
	var args []string
	if m.Template != "" {
		// No kernel: the guest is in the template's memory and state.
		args = append(h.machineArgs(m.MemMiB, m.CPUs, ""),
			"-object", fmt.Sprintf("memory-backend-file,id=ram,size=%dM,mem-path=%s,share=off", machineMem(m.MemMiB), filepath.Join(m.Template, templateMemory)),
			"-incoming", "defer")
	} else {
		initrd, err := h.Initrd()
		if err != nil {
			return nil, err
		}
		args = append(h.machineArgs(m.MemMiB, m.CPUs, initrd), "-object", fmt.Sprintf("memory-backend-ram,id=ram,size=%dM", machineMem(m.MemMiB)))
	}
	args = append(args, "-serial", "file:"+m.Console)
	args = append(args, devices("file="+m.Disk+",format=qcow2", m.Agent, m.Net)...)
	for i, sh := range m.Shares {
		fs := fmt.Sprintf("local,id=fs%d,path=%s,security_model=passthrough", i, sh.Path)
		if sh.ReadOnly {
			fs += ",readonly=on"
		}
		args = append(args, "-fsdev", fs, "-device", fmt.Sprintf("virtio-9p-device,fsdev=fs%d,mount_tag=%s", i, sh.Tag))
	}
	if m.QMP != "" {
		args = append(args, "-qmp", "unix:"+m.QMP+",server=on,wait=off")
	}
	return exec.Command(h.Qemu, args...), nil
}

// devices are a VM's devices but its shares, in the order every VM has
// them (a template's and the VMs started from it must match): the root
// disk (drive, QEMU's options for its file), the agent's port (a unix
// socket QEMU listens on), and wire.NICs NICs, always there (their
// driver loads when the VM joins a network, so a VM without one never
// sees them), each on its tap device with net.
func devices(drive, agentSocket string, net bool) []string {
	args := []string{
		"-drive", "id=root," + drive + ",if=none,cache=writeback,discard=unmap",
		"-device", "virtio-blk-device,drive=root",
		"-chardev", "socket,id=agent,path=" + agentSocket + ",server=on,wait=off",
		"-device", "virtio-serial-device", "-device", "virtserialport,chardev=agent,name=tent.agent",
	}
	for i := range wire.NICs {
		nic := "virtio-net-device,mac=" + wire.NICMAC(i)
		if net {
			args = append(args, "-netdev", fmt.Sprintf("tap,id=n%d,ifname=%s,script=no,downscript=no", i, TapName(i)))
			nic += fmt.Sprintf(",netdev=n%d", i)
		}
		args = append(args, "-device", nic)
	}
	return args
}

// machineMem is the guest's memory in MiB for a request of memMiB: at
// least the 96 MiB the guest boots in (at 80 its kernel panics "out of
// memory" while it starts).
func machineMem(memMiB int) int { return max(memMiB, 96) }

// machineArgs are QEMU's arguments for the machine, its accelerator and
// (unless initrd is "") the guest kernel with initrd, without devices;
// the guest's memory is the backend named "ram", which the caller adds.
func (h *Host) machineArgs(memMiB, cpus int, initrd string) []string {
	accel, cpu, tsc := "tcg,thread=multi", "max", tscFlag()
	if name, _ := h.Accel(); name == "kvm" {
		accel, cpu, tsc = "kvm", "host", ""
	}
	args := []string{
		"-M", "microvm,rtc=on,memory-backend=ram", "-accel", accel, "-cpu", cpu,
		"-m", strconv.Itoa(machineMem(memMiB)), "-smp", strconv.Itoa(max(cpus, 1)),
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
	}
	if initrd != "" {
		args = append(args, "-kernel", h.Kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1 reboot=t rdinit=/init "+tsc)
	}
	return args
}

// FloorCommand is QEMU booting the same machine and kernel as Command's
// into an initramfs of a static busybox alone, whose /init powers the
// machine off at once: what a boot costs at the least, the floor the
// bench holds a VM's run to.
func (h *Host) FloorCommand(busybox string, memMiB int) (*exec.Cmd, error) {
	initrd := filepath.Join(h.State, "floor.cpio")
	bin, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	c := &cpioWriter{w: bufio.NewWriter(&buf)}
	for _, e := range []struct {
		name string
		mode uint32
		data []byte
	}{{"bin", 0o040755, nil}, {"bin/busybox", 0o100755, bin}, {"init", 0o100755, []byte("#!/bin/busybox sh\n/bin/busybox poweroff -f\n")}, {"TRAILER!!!", 0, nil}} {
		if err := c.entry(e.name, e.mode, e.data); err != nil {
			return nil, err
		}
	}
	if err := c.w.Flush(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(initrd, buf.Bytes(), 0o600); err != nil {
		return nil, err
	}
	return exec.Command(h.Qemu, append(h.machineArgs(memMiB, 1, initrd), "-object", fmt.Sprintf("memory-backend-ram,id=ram,size=%dM", machineMem(memMiB)), "-serial", "null")...), nil
}

// tscFlag gives the guest the host's TSC frequency: under TCG the
// guest's early calibration can take long enough to hang a boot.
func tscFlag() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "cpu MHz" {
			if mhz, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && mhz > 0 {
				return "tsc_early_khz=" + strconv.Itoa(int(mhz*1000))
			}
		}
	}
	return ""
}
