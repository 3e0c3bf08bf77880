package daemon

import (
	"fmt"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/oci"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/spec"
	"github.com/tent-project/tent/internal/task/vmtask"
)

// What a container's create takes: its configuration merged with its
// image's, the defaults dockerd records, the runtime it runs on, and
// what the engine refuses rather than take and ignore.

// matchPlatform checks that an image asked for by platform is of it, as
// dockerd does (no image of another platform is run in its place).
func matchPlatform(ref, platform string, img *ocispec.Image) error {
	if platform == "" {
		return nil
	}
	want, err := registry.ParsePlatform(platform)
	if err != nil {
		return err
	}
	if want.OS != img.OS || want.Architecture != img.Architecture || want.Variant != "" && want.Variant != img.Variant {
		actual := img.OS + "/" + img.Architecture
		if img.Variant != "" {
			actual += "/" + img.Variant
		}
		return fmt.Errorf("image with reference %s was found but does not match the specified platform: wanted %s, actual: %s: %w", ref, platform, actual, errdefs.ErrNotFound)
	}
	return nil
}

// validateHostConfig refuses what the engine cannot do yet, rather than
// accepting and ignoring it.
func validateHostConfig(hc *container.HostConfig) error {
	if _, err := logfile.Configure(hc.LogConfig.Type, hc.LogConfig.Config); err != nil {
		return err
	}
	if _, err := spec.ParseSecurityOpts(hc.SecurityOpt); err != nil {
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

// validateResources checks the limits spec.Build applies and refuses the
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
	if err := spec.ValidateDevices(hc); err != nil {
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

// isolationVM is the isolation of a VM container (--isolation vm).
const isolationVM = "vm"

// selectRuntime picks the container's runtime: --runtime, or tent-vm for
// --isolation vm, or tent's own; it must be one the daemon has.
func (d *Daemon) selectRuntime(hc *container.HostConfig) error {
	switch iso := strings.ToLower(string(hc.Isolation)); {
	case iso == isolationVM:
		if hc.Runtime != "" && hc.Runtime != vmtask.Name {
			return fmt.Errorf("conflicting options: --isolation vm runs with the %s runtime, not %s: %w", vmtask.Name, hc.Runtime, errdefs.ErrInvalidArgument)
		}
		hc.Runtime = vmtask.Name
	case !hc.Isolation.IsDefault():
		return fmt.Errorf("Invalid isolation: %q - linux only supports 'default' (and tent's 'vm'): %w", hc.Isolation, errdefs.ErrInvalidArgument)
	}
	if hc.Runtime == "" {
		hc.Runtime = defaultRuntime
	}
	if hc.Runtime == vmtask.Name {
		hc.Isolation = isolationVM
		if d.vmErr != nil {
			return fmt.Errorf("%w: %w", d.vmErr, errdefs.ErrUnavailable)
		}
	}
	_, err := d.runtime(hc)
	return err
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

// discardUnsupported drops the limits this host's kernel cannot apply,
// with dockerd's warnings (a container must still start where a weight
// is only a preference).
func discardUnsupported(hc *container.HostConfig) []string {
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

// hostConfigDefaults records what a container gets for the settings left
// unset, as dockerd does at create, so that inspect shows what it runs
// with: the log options, the IPC and cgroup namespace modes, /dev/shm's
// size, the swap limit (as much swap as memory), the masked and read-only
// paths. A VM container's guest applies none of the last three.
// cgroupnsHost: an old client's default cgroup namespace, the host's on
// cgroup v1 (backend.CreateOpts).
func hostConfigDefaults(hc *container.HostConfig, cgroupnsHost bool) {
	if hc.IpcMode == "" {
		hc.IpcMode = container.IPCModePrivate
	}
	if hc.CgroupnsMode == "" {
		hc.CgroupnsMode = container.CgroupnsModePrivate // tent's default on cgroup v1 too (docker's there: host)
		if cgroupnsHost && !cgroups.Unified() && hc.Runtime != vmtask.Name {
			hc.CgroupnsMode = container.CgroupnsModeHost
		}
	}
	if hc.OomKillDisable == nil {
		hc.OomKillDisable = new(bool)
	}
	if hc.Memory > 0 && hc.MemorySwap == 0 {
		hc.MemorySwap = 2 * hc.Memory
	}
	if hc.Runtime == vmtask.Name {
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

// validateVM refuses what a VM container cannot have yet (docs/vm.md),
// rather than taking it and leaving it out.
func validateVM(cfg *container.Config, hc *container.HostConfig) error {
	no := func(what string) error {
		return fmt.Errorf("%s: not supported for VM containers (--isolation vm) yet: %w", what, errdefs.ErrNotImplemented)
	}
	switch {
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
	sec, err := spec.ParseSecurityOpts(hc.SecurityOpt)
	if err != nil {
		return err
	}
	if sec.NoNewPrivileges || sec.Seccomp != "" && sec.Seccomp != "unconfined" || sec.AppArmor != "" && sec.AppArmor != "unconfined" {
		return no("--security-opt no-new-privileges, seccomp and apparmor profiles")
	}
	return nil
}

// mergeConfig fills what the user left out of cfg from the image, as
// docker does: the image's Cmd only when the user gave neither Cmd nor
// Entrypoint, the image's Env under the user's, and so on.
func mergeConfig(cfg *container.Config, img *ocispec.Image) *container.Config {
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
