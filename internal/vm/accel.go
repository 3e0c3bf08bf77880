package vm

import (
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/vm/wire"
)

// ProbeArg on the guest's command line makes the agent answer ready as
// soon as its port opens, and power off: a boot to the agent, nothing
// more.
const ProbeArg = "tent.probe"

// probeTimeout bounds the probe's boot (under KVM a fraction of a second).
const probeTimeout = 15 * time.Second

// Accel is how VMs run here: "kvm" or "tcg", and why not KVM when not.
func (h *Host) Accel() (name, note string) {
	h.probeOnce.Do(h.probe)
	return h.accel, h.accelNote
}

// StartProbe finds the accelerator in the background (the first VM
// waits for it).
func (h *Host) StartProbe() { go h.Accel() }

// probe boots the guest under KVM once: a host whose /dev/kvm cannot run
// this kernel (a PVM host runs only PVM-built guests; a stock kernel
// crashes under it) falls back to TCG, which runs anything, slowly.
func (h *Host) probe() {
	h.accel = "tcg"
	if _, err := os.Stat("/dev/kvm"); err != nil {
		h.accelNote = "no /dev/kvm"
		return
	}
	if err := h.bootKVM(); err != nil {
		h.accelNote = "KVM did not boot the guest kernel (" + err.Error() + ")"
		return
	}
	h.accel, h.accelNote = "kvm", ""
}

func (h *Host) bootKVM() error {
	initrd, err := h.Initrd()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(h.State, "probe-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cmd := exec.Command(h.Qemu, "-M", "microvm,rtc=on", "-accel", "kvm", "-cpu", "host", "-m", "128",
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
		"-kernel", h.Kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1 reboot=t rdinit=/init "+ProbeArg,
		"-serial", "file:console.log",
		"-chardev", "socket,id=agent,path=agent.sock,server=on,wait=off",
		"-device", "virtio-serial-device", "-device", "virtserialport,chardev=agent,name=tent.agent")
	cmd.Dir = dir
	// It dies with the daemon: a daemon stopped while its probe boots
	// (the probe runs from its start) left it running, and a guest that
	// hangs under this host's KVM kept a tenth of a CPU busy for good
	// (~80 of them after a test run, which ran at half speed).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	exited, stop, err := startQEMU(cmd)
	if err != nil {
		return err
	}
	defer stop()
	conn, err := awaitAgent(dir, "agent.sock", exited, time.Now().Add(probeTimeout), wire.Config, []byte("{}"))
	if err == nil {
		conn.Close()
	}
	return err
}
