package spec

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/oci"
	"golang.org/x/sys/unix"
)

// What a container's create takes: its configuration merged with its
// image's, the defaults dockerd records, and what the engine refuses
// rather than take and ignore.

// ValidateHostConfig refuses what the engine cannot do yet, rather than
// accepting and ignoring it (but the log driver: internal/logfile).
func ValidateHostConfig(hc *container.HostConfig) error {
	if _, err := ParseSecurityOpts(hc.SecurityOpt); err != nil {
		return err
	}
	if hc.RestartPolicy.Name != "" && hc.RestartPolicy.Name != container.RestartPolicyDisabled && hc.AutoRemove {
		return fmt.Errorf("conflicting options: cannot specify both --restart and --rm: %w", errdefs.ErrInvalidArgument)
	}
	if hc.Memory < 0 || hc.NanoCPUs < 0 {
		return fmt.Errorf("resource limits cannot be negative: %w", errdefs.ErrInvalidArgument)
	}
	for _, m := range []struct{ what, mode string }{{"PID", string(hc.PidMode)}, {"IPC", string(hc.IpcMode)}, {"UTS", string(hc.UTSMode)}} {
		other, isContainer := strings.CutPrefix(m.mode, "container:")
		ok := m.mode == "" || m.mode == "host" || isContainer && other != "" && m.what != "UTS" ||
			m.what == "IPC" && (m.mode == "private" || m.mode == "shareable" || m.mode == "none")
		if !ok {
			return fmt.Errorf("invalid %s mode: %s: %w", m.what, m.mode, errdefs.ErrInvalidArgument)
		}
	}
	if hc.Memory > 0 && hc.Memory < 6*1024*1024 {
		return fmt.Errorf("Minimum memory limit allowed is 6MB: %w", errdefs.ErrInvalidArgument)
	}
	return validateResources(hc)
}

// validateResources checks the limits Build applies and refuses the
// ones the engine has no way to honour on Linux; the wording is dockerd's
// where it has one.
func validateResources(hc *container.HostConfig) error {
	if s := hc.MemorySwappiness; s != nil && (*s < -1 || *s > 100) {
		return fmt.Errorf("Invalid value: %v, valid memory swappiness range is 0-100: %w", *s, errdefs.ErrInvalidArgument)
	}
	if hc.CPURealtimePeriod < 0 || hc.CPURealtimeRuntime < 0 {
		return fmt.Errorf("real-time CPU limits cannot be negative: %w", errdefs.ErrInvalidArgument)
	}
	if hc.CPURealtimePeriod > 0 && hc.CPURealtimeRuntime > hc.CPURealtimePeriod {
		return fmt.Errorf("cpu real-time runtime cannot be higher than cpu real-time period: %w", errdefs.ErrInvalidArgument)
	}
	if hc.CPUCount != 0 || hc.CPUPercent != 0 || hc.IOMaximumIOps != 0 || hc.IOMaximumBandwidth != 0 {
		return fmt.Errorf("CPU count, CPU percent and IO maximums are options of Windows containers, not of Linux: %w", errdefs.ErrInvalidArgument)
	}
	for _, r := range hc.DeviceRequests {
		return fmt.Errorf("could not select device driver %q with capabilities: %v: %w", r.Driver, r.Capabilities, errdefs.ErrInvalidArgument)
	}
	if err := ValidateDevices(hc); err != nil {
		return err
	}
	switch {
	case hc.CgroupnsMode != "" && !hc.CgroupnsMode.IsHost() && !hc.CgroupnsMode.IsPrivate():
		return fmt.Errorf("invalid cgroup namespace mode: %v: %w", hc.CgroupnsMode, errdefs.ErrInvalidArgument)
	case hc.Cgroup != "":
		return fmt.Errorf("--cgroup %s: joining another container's cgroup is not supported: %w", hc.Cgroup, errdefs.ErrNotImplemented)
	case hc.UsernsMode != "" && !hc.UsernsMode.IsHost():
		return fmt.Errorf("invalid user namespace mode: %s (the engine has no user namespace remapping): %w", hc.UsernsMode, errdefs.ErrInvalidArgument)
	case len(hc.StorageOpt) > 0:
		return fmt.Errorf("--storage-opt is supported only for overlay over xfs with 'pquota' mount option: %w", errdefs.ErrInvalidArgument)
	case hc.VolumeDriver != "" && hc.VolumeDriver != "local":
		return fmt.Errorf("volume driver %q is not supported: %w", hc.VolumeDriver, errdefs.ErrNotImplemented)
	}
	return nil
}

// DiscardUnsupported drops the limits this host's kernel cannot apply,
// with dockerd's warnings (a container must still start where a weight
// is only a preference).
func DiscardUnsupported(hc *container.HostConfig) []string {
	var warnings []string
	if (hc.BlkioWeight > 0 || len(hc.BlkioWeightDevice) > 0) && !cgroups.BlkioWeightSupported() {
		if hc.BlkioWeight > 0 {
			warnings = append(warnings, "Your kernel does not support Block I/O weight or the cgroup is not mounted. Weight discarded.")
		}
		if len(hc.BlkioWeightDevice) > 0 {
			warnings = append(warnings, "Your kernel does not support Block I/O weight_device or the cgroup is not mounted. Weight-device discarded.")
		}
		hc.BlkioWeight, hc.BlkioWeightDevice = 0, nil
	}
	return warnings
}

// defaultShmSize is /dev/shm's size unless --shm-size says otherwise.
const defaultShmSize = 64 << 20

// HostConfigDefaults records what a container gets for the settings left
// unset, as dockerd does at create, so that inspect shows what it runs
// with: the log options, the IPC and cgroup namespace modes, /dev/shm's
// size, the swap limit (as much swap as memory), the masked and read-only
// paths. A VM container's (vm) guest applies none of the last three.
// cgroupnsHost: an old client's default cgroup namespace, the host's on
// cgroup v1 (backend.CreateOpts).
func HostConfigDefaults(hc *container.HostConfig, cgroupnsHost, vm bool) {
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = container.CgroupnsModePrivate // tent's default on cgroup v1 too (docker's there: host)
		if cgroupnsHost && !cgroups.Unified() && !vm {
			hc.CgroupnsMode = container.CgroupnsModeHost
		}
	}
	if hc.OomKillDisable == nil {
		hc.OomKillDisable = new(bool)
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		hc.MemorySwap = 2 * hc.Memory
	}
	if vm {
		return
	}
	if hc.ShmSize == 0 {
		hc.ShmSize = defaultShmSize
	}
	if !hc.Privileged {
		if hc.MaskedPaths == nil {
			hc.MaskedPaths = slices.Clone(oci.DefaultMaskedPaths)
		}
		if hc.ReadonlyPaths == nil {
			hc.ReadonlyPaths = slices.Clone(oci.DefaultReadonlyPaths)
		}
	}
}

// ValidateVM refuses what a VM container cannot have yet (docs/vm.md),
// rather than taking it and leaving it out.
func ValidateVM(cfg *container.Config, hc *container.HostConfig, imageArch string) error {
	no := func(what string) error {
		return fmt.Errorf("%s: not supported for VM containers (--isolation vm) yet: %w", what, errdefs.ErrNotImplemented)
	}
	switch {
	case imageArch != "" && imageArch != runtime.GOARCH:
		return fmt.Errorf("the image is for %s: VMs here run %s guests (no emulation of other machines yet): %w", imageArch, runtime.GOARCH, errdefs.ErrNotImplemented)
	case hc.Memory > 0 && hostMemory() > 0 && hc.Memory+VMOverhead > hostMemory():
		return fmt.Errorf("--memory %dMiB: a VM of %dMiB (with its guest kernel's and agent's %dMiB) is more than this host's memory, %dMiB: %w",
			hc.Memory>>20, (hc.Memory+VMOverhead)>>20, VMOverhead>>20, hostMemory()>>20, errdefs.ErrInvalidArgument)
	case hc.NetworkMode.IsHost() || hc.NetworkMode.IsContainer():
		return no("--network host and container: (a VM has its own network stack)")
	// --privileged is taken: in its guest a VM's workload has every
	// capability and device, no filter and no masked path, privileged
	// or not (the guest's kernel is the wall); the host's devices are
	// not the guest's.
	case len(hc.Devices) > 0 || len(hc.DeviceCgroupRules) > 0:
		return no("devices")
	case hc.PidMode != "" || hc.UTSMode != "" || hc.IpcMode != "" && hc.IpcMode != "private" && hc.IpcMode != "shareable" || hc.CgroupnsMode.IsHost():
		return no("sharing namespaces (--pid, --ipc, --uts, --cgroupns)")
	// What the agent does not apply in the guest: the workload runs there
	// as a root with every capability, no seccomp filter or LSM profile.
	case len(hc.CapAdd) > 0 || len(hc.CapDrop) > 0:
		return no("--cap-add and --cap-drop")
	case len(hc.Sysctls) > 0 || hc.OomScoreAdj != 0 || hc.ShmSize > 0 || cfg.Domainname != "" || hc.MaskedPaths != nil || hc.ReadonlyPaths != nil:
		return no("--sysctl, --oom-score-adj, --shm-size, --domainname, masked and read-only paths")
	}
	sec, err := ParseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	if sec.NoNewPrivileges || sec.Seccomp != "" && sec.Seccomp != "unconfined" || sec.AppArmor != "" && sec.AppArmor != "unconfined" {
		return no("--security-opt no-new-privileges, seccomp and apparmor profiles")
	}
	return nil
}

// VMOverhead is what a VM's guest kernel, initramfs and agent take of
// its memory: a VM's memory is its --memory and this, so that its
// workload has about what --memory says (measured, session 16: a guest
// of N MiB has N-88 to N-91 MiB available to programs).
const VMOverhead = 96 << 20

// hostMemory is the host's memory in bytes (0 if unknown).
func hostMemory() int64 {
	var si unix.Sysinfo_t
	if unix.Sysinfo(&si) != nil {
		return 0
	}
	return int64(si.Totalram) * int64(si.Unit)
}

// MergeConfig fills what the user left out of cfg from the image, as
// docker does: the image's Cmd only when the user gave neither Cmd nor
// Entrypoint, the image's Env under the user's, and so on.
func MergeConfig(cfg *container.Config, img *ocispec.Image) *container.Config {
	m := *cfg
	ic := img.Config
	if len(m.Entrypoint) == 0 {
		m.Entrypoint = ic.Entrypoint
		if len(m.Cmd) == 0 {
			m.Cmd = ic.Cmd
		}
	} else if len(m.Entrypoint) == 1 && m.Entrypoint[0] == "" {
		m.Entrypoint = nil // --entrypoint "" clears the image's
	}
	m.Env = imageEnv(cfg.Env, ic.Env)
	for p := range ic.ExposedPorts {
		port, err := netapi.ParsePort(p)
		if err != nil {
			continue // not a port: the image's mistake, which docker skips too
		}
		if m.ExposedPorts == nil {
			m.ExposedPorts = netapi.PortSet{}
		}
		m.ExposedPorts[port] = struct{}{}
	}
	if m.WorkingDir == "" {
		m.WorkingDir = ic.WorkingDir
	}
	if m.User == "" {
		m.User = ic.User
	}
	if m.StopSignal == "" {
		m.StopSignal = ic.StopSignal
	}
	if len(ic.Labels) > 0 {
		labels := map[string]string{}
		for k, v := range ic.Labels {
			labels[k] = v
		}
		for k, v := range cfg.Labels {
			labels[k] = v
		}
		m.Labels = labels
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	if len(ic.Volumes) > 0 { // the image's and the user's, as docker
		vols := map[string]struct{}{}
		for k := range ic.Volumes {
			vols[k] = struct{}{}
		}
		for k := range cfg.Volumes {
			vols[k] = struct{}{}
		}
		m.Volumes = vols
	}
	return &m
}

// imageEnv is the container's environment as dockerd records it: the
// user's variables, then the image's that the user did not set.
func imageEnv(user, image []string) []string {
	if len(user) == 0 {
		return slices.Clone(image)
	}
	out := slices.Clone(user)
	for _, kv := range image {
		k, _, _ := strings.Cut(kv, "=")
		if !slices.ContainsFunc(user, func(u string) bool { uk, _, _ := strings.Cut(u, "="); return uk == k }) {
			out = append(out, kv)
		}
	}
	return out
}

// ApplyUpdate sets the fields that an update (docker update) gives on
// hc, with dockerd's checks; what it could carry but the engine does not
// change is refused.
func ApplyUpdate(hc *container.HostConfig, u container.UpdateConfig) error {
	r := u.Resources
	conflict := func(msg string) error { return fmt.Errorf("%s: %w", msg, errdefs.ErrInvalidArgument) }
	switch {
	case r.NanoCPUs > 0 && r.CPUPeriod > 0:
		return conflict("Conflicting options: Nano CPUs and CPU Period cannot both be set")
	case r.NanoCPUs > 0 && r.CPUQuota > 0:
		return conflict("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
	case r.NanoCPUs > 0 && (hc.CPUQuota > 0 || hc.CPUPeriod > 0):
		return conflict("Conflicting options: Nano CPUs cannot be updated as CPU Period/Quota has already been set")
	case (r.CPUPeriod > 0 || r.CPUQuota > 0) && hc.NanoCPUs > 0:
		return conflict("Conflicting options: CPU Quota/Period cannot be updated as NanoCPUs has already been set")
	}
	if r.CPURealtimePeriod != 0 || r.CPURealtimeRuntime != 0 {
		return fmt.Errorf("real-time CPU limits (--cpu-rt-period, --cpu-rt-runtime) are not supported: %w", errdefs.ErrNotImplemented)
	}
	// What an update could carry but does not change here: refused, not
	// taken and dropped.
	if r.MemorySwappiness != nil || r.OomKillDisable != nil ||
		len(r.BlkioWeightDevice) > 0 || len(r.BlkioDeviceReadBps) > 0 || len(r.BlkioDeviceWriteBps) > 0 ||
		len(r.BlkioDeviceReadIOps) > 0 || len(r.BlkioDeviceWriteIOps) > 0 || len(r.Devices) > 0 ||
		len(r.DeviceCgroupRules) > 0 || len(r.Ulimits) > 0 || r.CPUCount != 0 || r.CPUPercent != 0 {
		return fmt.Errorf("update can change memory, swap, reservation, cpus, cpu shares, period and quota, cpusets, pids, blkio weight and the restart policy only: %w", errdefs.ErrNotImplemented)
	}
	if r.BlkioWeight != 0 {
		if !cgroups.BlkioWeightSupported() {
			return fmt.Errorf("Your kernel does not support Block I/O weight or the cgroup is not mounted: %w", errdefs.ErrInvalidArgument)
		}
		hc.BlkioWeight = r.BlkioWeight
	}
	if r.CPUShares != 0 {
		hc.CPUShares = r.CPUShares
	}
	if r.NanoCPUs != 0 {
		hc.NanoCPUs = r.NanoCPUs
	}
	if r.CPUPeriod != 0 {
		hc.CPUPeriod = r.CPUPeriod
	}
	if r.CPUQuota != 0 {
		hc.CPUQuota = r.CPUQuota
	}
	if r.CpusetCpus != "" {
		hc.CpusetCpus = r.CpusetCpus
	}
	if r.CpusetMems != "" {
		hc.CpusetMems = r.CpusetMems
	}
	if r.Memory != 0 {
		swap := hc.MemorySwap
		if swap == 0 && hc.Memory > 0 {
			swap = 2 * hc.Memory // the default the container runs with
		}
		if r.Memory > swap && r.MemorySwap == 0 { // also with no limit (0) or unlimited swap (-1), as dockerd
			return fmt.Errorf("Memory limit should be smaller than already set memoryswap limit, update the memoryswap at the same time: %w", errdefs.ErrConflict)
		}
		hc.Memory, hc.MemorySwap = r.Memory, swap
	}
	if r.MemorySwap != 0 {
		if hc.Memory == 0 {
			return conflict("You should always set the Memory limit when using Memoryswap limit")
		}
		if r.MemorySwap > 0 && r.MemorySwap < hc.Memory {
			return conflict("Minimum memoryswap limit should be larger than memory limit, see usage")
		}
		hc.MemorySwap = r.MemorySwap
	}
	if r.MemoryReservation != 0 {
		hc.MemoryReservation = r.MemoryReservation
	}
	if r.PidsLimit != nil {
		hc.PidsLimit = r.PidsLimit
	}
	if u.RestartPolicy.Name != "" {
		if hc.AutoRemove && u.RestartPolicy.Name != container.RestartPolicyDisabled {
			return conflict("Restart policy cannot be updated because AutoRemove is enabled for the container")
		}
		hc.RestartPolicy = u.RestartPolicy
	}
	return nil
}
