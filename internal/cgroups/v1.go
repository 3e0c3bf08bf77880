package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1 manages a cgroup across the per-controller hierarchies of cgroup v1.
type v1 struct {
	path   string
	mounts map[string]string // controller -> mount point
}

// v1Controllers are the controllers tent joins, besides named hierarchies.
var v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer",
	"blkio", "pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"}

// v1Mounts finds the mount point of every cgroup v1 controller, once per
// process: a manager is made for every operation on a container (a
// monitor makes four as its container ends), and the host's hierarchies
// do not move.
var v1Mounts = sync.OnceValues(readV1Mounts)

func readV1Mounts() (map[string]string, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	known := map[string]bool{}
	for _, c := range v1Controllers {
		known[c] = true
	}
	mounts := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent maj:min root mountpoint opts ... - fstype source superopts
		fields := strings.Fields(sc.Text())
		sep := -1
		for i, f := range fields {
			if f == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 >= len(fields) || fields[sep+1] != "cgroup" {
			continue
		}
		for _, opt := range strings.Split(fields[sep+3], ",") {
			// Named hierarchies (name=systemd) are joined too, as runc does.
			if known[opt] || strings.HasPrefix(opt, "name=") {
				if _, dup := mounts[opt]; !dup {
					mounts[opt] = fields[4]
				}
			}
		}
	}
	if len(mounts) == 0 {
		return nil, fmt.Errorf("cgroup v1: no controller is mounted: %w", ErrNoController)
	}
	return mounts, sc.Err()
}

func (m *v1) Dir(controller string) string {
	mp, ok := m.mounts[controller]
	if !ok {
		return ""
	}
	return filepath.Join(mp, m.path)
}

// hierarchies returns each distinct mount point once (co-mounted
// controllers such as cpu,cpuacct share one), sorted for stable order.
func (m *v1) hierarchies() []string {
	seen := map[string]bool{}
	var out []string
	for _, mp := range m.mounts {
		if !seen[mp] {
			seen[mp] = true
			out = append(out, mp)
		}
	}
	sort.Strings(out)
	return out
}

func (m *v1) Apply(pid int) error {
	in := m.member(pid)
	for _, mp := range m.hierarchies() {
		dir := filepath.Join(mp, m.path)
		if mp == m.mounts["cpuset"] {
			if err := mkdirCpuset(mp, m.path); err != nil {
				return err
			}
		} else if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup: %w", err)
		}
		if in[mp] {
			// Already there (a renamed spare's, Rename): a write would
			// cost the same grace period as a move.
			continue
		}
		if err := write(dir, "cgroup.procs", itoa(int64(pid))); err != nil {
			return err
		}
	}
	return nil
}

// member tells, by hierarchy, where pid is in m's cgroup already.
func (m *v1) member(pid int) map[string]bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return nil
	}
	in := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		// hierarchy-ID:controller-list:path
		f := strings.SplitN(line, ":", 3)
		if len(f) != 3 || f[2] != m.path {
			continue
		}
		for _, c := range strings.Split(f[1], ",") {
			if mp, ok := m.mounts[c]; ok {
				in[mp] = true
			}
		}
	}
	return in
}

// rename gives m's cgroup the path to (same parent) in every hierarchy.
func (m *v1) rename(to string) error {
	for _, mp := range m.hierarchies() {
		if err := os.Rename(filepath.Join(mp, m.path), filepath.Join(mp, to)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("cgroup: %w", err)
		}
	}
	return nil
}

// mkdirCpuset creates each level of a cpuset cgroup, copying cpus and mems
// from its parent: a new v1 cpuset starts empty and refuses tasks.
func mkdirCpuset(mp, path string) error {
	parent := mp
	for _, part := range strings.Split(strings.Trim(path, "/"), "/") {
		dir := filepath.Join(parent, part)
		if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup: %w", err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, _ := read(dir, f); v == "" {
				pv, err := read(parent, f)
				if err != nil {
					return fmt.Errorf("cgroup: %w", err)
				}
				if err := write(dir, f, pv); err != nil {
					return err
				}
			}
		}
		parent = dir
	}
	return nil
}

func (m *v1) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if len(r.Unified) > 0 {
		return fmt.Errorf("cgroup: unified resources need cgroup v2: %w", ErrNoController)
	}
	if len(r.Rdma) > 0 {
		return fmt.Errorf("cgroup: rdma: %w", ErrNoController)
	}
	if err := m.setDevices(r.Devices); err != nil {
		return err
	}
	if err := m.setMemory(r.Memory); err != nil {
		return err
	}
	if err := m.setCPU(r.CPU); err != nil {
		return err
	}
	if r.Pids != nil {
		v := "max"
		if r.Pids.Limit != nil && *r.Pids.Limit > 0 {
			v = itoa(*r.Pids.Limit)
		}
		if err := m.writeTo("pids", "pids.max", v); err != nil {
			return err
		}
	}
	if err := m.setBlkio(r.BlockIO); err != nil {
		return err
	}
	for _, h := range r.HugepageLimits {
		if err := m.writeTo("hugetlb", "hugetlb."+h.Pagesize+".limit_in_bytes", utoa(h.Limit)); err != nil {
			return err
		}
	}
	if n := r.Network; n != nil {
		if n.ClassID != nil {
			if err := m.writeTo("net_cls", "net_cls.classid", utoa(uint64(*n.ClassID))); err != nil {
				return err
			}
		}
		for _, p := range n.Priorities {
			if err := m.writeTo("net_prio", "net_prio.ifpriomap", fmt.Sprintf("%s %d", p.Name, p.Priority)); err != nil {
				return err
			}
		}
	}
	return nil
}

// writeTo writes a file of one controller, failing clearly if the host lacks it.
func (m *v1) writeTo(controller, file, value string) error {
	dir := m.Dir(controller)
	if dir == "" {
		return fmt.Errorf("cgroup: %s: %w", controller, ErrNoController)
	}
	return write(dir, file, value)
}

func (m *v1) setMemory(mem *specs.LinuxMemory) error {
	if mem == nil {
		return nil
	}
	dir := m.Dir("memory")
	if dir == "" {
		return fmt.Errorf("cgroup: memory: %w", ErrNoController)
	}
	if mem.Limit != nil {
		limit := itoa(*mem.Limit)
		if mem.Swap != nil && exists(dir, "memory.memsw.limit_in_bytes") {
			swap := itoa(*mem.Swap)
			// The kernel wants limit <= memsw at every moment: raise memsw
			// first when the limit goes up, lower the limit first otherwise.
			if err := write(dir, "memory.limit_in_bytes", limit); err == nil {
				if err := write(dir, "memory.memsw.limit_in_bytes", swap); err != nil {
					return err
				}
			} else {
				if err := write(dir, "memory.memsw.limit_in_bytes", swap); err != nil {
					return err
				}
				if err := write(dir, "memory.limit_in_bytes", limit); err != nil {
					return err
				}
			}
		} else if err := write(dir, "memory.limit_in_bytes", limit); err != nil {
			return err
		}
	} else if mem.Swap != nil && exists(dir, "memory.memsw.limit_in_bytes") {
		if err := write(dir, "memory.memsw.limit_in_bytes", itoa(*mem.Swap)); err != nil {
			return err
		}
	}
	if mem.Reservation != nil {
		if err := write(dir, "memory.soft_limit_in_bytes", itoa(*mem.Reservation)); err != nil {
			return err
		}
	}
	if mem.Swappiness != nil && *mem.Swappiness <= 100 {
		if err := write(dir, "memory.swappiness", utoa(*mem.Swappiness)); err != nil {
			return err
		}
	}
	// The TCP buffer limit. (memory.kernel is deprecated and, as the spec
	// allows and runc does, ignored.)
	if mem.KernelTCP != nil {
		if err := write(dir, "memory.kmem.tcp.limit_in_bytes", itoa(*mem.KernelTCP)); err != nil {
			return err
		}
	}
	if mem.DisableOOMKiller != nil && *mem.DisableOOMKiller {
		if err := write(dir, "memory.oom_control", "1"); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setCPU(c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		if err := m.writeTo("cpu", "cpu.shares", utoa(*c.Shares)); err != nil {
			return err
		}
	}
	if c.Period != nil && *c.Period != 0 {
		if err := m.writeTo("cpu", "cpu.cfs_period_us", utoa(*c.Period)); err != nil {
			return err
		}
	}
	if c.Quota != nil && *c.Quota != 0 {
		if err := m.writeTo("cpu", "cpu.cfs_quota_us", itoa(*c.Quota)); err != nil {
			return err
		}
	}
	if c.Burst != nil {
		if err := m.writeTo("cpu", "cpu.cfs_burst_us", utoa(*c.Burst)); err != nil {
			return err
		}
	}
	if c.Idle != nil {
		if err := m.writeTo("cpu", "cpu.idle", itoa(*c.Idle)); err != nil {
			return err
		}
	}
	if c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		if err := m.writeTo("cpu", "cpu.rt_period_us", utoa(*c.RealtimePeriod)); err != nil {
			return err
		}
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 {
		if err := m.writeTo("cpu", "cpu.rt_runtime_us", itoa(*c.RealtimeRuntime)); err != nil {
			return err
		}
	}
	if c.Cpus != "" {
		if err := m.writeTo("cpuset", "cpuset.cpus", c.Cpus); err != nil {
			return err
		}
	}
	if c.Mems != "" {
		if err := m.writeTo("cpuset", "cpuset.mems", c.Mems); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) setBlkio(b *specs.LinuxBlockIO) error {
	if b == nil {
		return nil
	}
	dir := m.Dir("blkio")
	if dir == "" {
		return fmt.Errorf("cgroup: blkio: %w", ErrNoController)
	}
	weightFile := "blkio.weight"
	if !exists(dir, weightFile) && exists(dir, "blkio.bfq.weight") {
		weightFile = "blkio.bfq.weight"
	}
	if b.Weight != nil && *b.Weight != 0 {
		if err := write(dir, weightFile, utoa(uint64(*b.Weight))); err != nil {
			return err
		}
	}
	if b.LeafWeight != nil && *b.LeafWeight != 0 {
		if err := write(dir, "blkio.leaf_weight", utoa(uint64(*b.LeafWeight))); err != nil {
			return err
		}
	}
	for _, d := range b.WeightDevice {
		if d.Weight != nil {
			if err := write(dir, weightFile+"_device", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, *d.Weight)); err != nil {
				return err
			}
		}
	}
	throttles := []struct {
		file string
		list []specs.LinuxThrottleDevice
	}{
		{"blkio.throttle.read_bps_device", b.ThrottleReadBpsDevice},
		{"blkio.throttle.write_bps_device", b.ThrottleWriteBpsDevice},
		{"blkio.throttle.read_iops_device", b.ThrottleReadIOPSDevice},
		{"blkio.throttle.write_iops_device", b.ThrottleWriteIOPSDevice},
	}
	for _, t := range throttles {
		for _, d := range t.list {
			if err := write(dir, t.file, fmt.Sprintf("%d:%d %d", d.Major, d.Minor, d.Rate)); err != nil {
				return err
			}
		}
	}
	return nil
}

// setDevices writes the device rules in order onto the v1 allow list.
func (m *v1) setDevices(rules []specs.LinuxDeviceCgroup) error {
	if len(rules) == 0 {
		return nil
	}
	dir := m.Dir("devices")
	if dir == "" {
		return fmt.Errorf("cgroup: devices: %w", ErrNoController)
	}
	for _, r := range WithDefaultDevices(rules) {
		file := "devices.deny"
		if r.Allow {
			file = "devices.allow"
		}
		if err := write(dir, file, DeviceRule(r)); err != nil {
			return err
		}
	}
	return nil
}

func (m *v1) Pids() ([]int, error) {
	for _, c := range []string{"pids", "memory", "cpu", "freezer", "devices"} {
		if dir := m.Dir(c); dir != "" {
			return readPids(dir)
		}
	}
	for _, mp := range m.hierarchies() {
		return readPids(filepath.Join(mp, m.path))
	}
	return nil, nil
}

func (m *v1) freezer(state string) error {
	dir := m.Dir("freezer")
	if dir == "" {
		return fmt.Errorf("cgroup: freezer: %w", ErrNoController)
	}
	if err := write(dir, "freezer.state", state); err != nil {
		return err
	}
	for i := 0; i < 1000; i++ {
		cur, err := read(dir, "freezer.state")
		if err != nil {
			return err
		}
		if cur == state {
			return nil
		}
		if state == "FROZEN" && i%50 == 49 {
			// Freezing can stall on a task in an uninterruptible sleep
			// (one in the middle of execve, say, right after a start):
			// thaw, let it get past, and freeze again, as runc does.
			_ = write(dir, "freezer.state", "THAWED")
			time.Sleep(10 * time.Millisecond)
			_ = write(dir, "freezer.state", state)
		}
		sleepBackoff(0)
	}
	return fmt.Errorf("cgroup: %s did not reach %s", dir, state)
}

func (m *v1) Freeze() error { return m.freezer("FROZEN") }
func (m *v1) Thaw() error   { return m.freezer("THAWED") }

func (m *v1) Frozen() (bool, error) {
	dir := m.Dir("freezer")
	if dir == "" {
		return false, nil
	}
	s, err := read(dir, "freezer.state")
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	return s == "FROZEN" || s == "FREEZING", err
}

func (m *v1) Destroy() error {
	var errs []error
	for _, mp := range m.hierarchies() {
		if err := removeDir(filepath.Join(mp, m.path)); err != nil && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Hierarchy is one mounted cgroup v1 hierarchy.
type Hierarchy struct {
	Mount       string   // e.g. /sys/fs/cgroup/memory
	Controllers []string // e.g. [memory], or [name=systemd]
}

// V1Hierarchies lists the host's cgroup v1 hierarchies, named ones included,
// for mounting them into a container.
func V1Hierarchies() ([]Hierarchy, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []Hierarchy
	seen := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		for i, f := range fields {
			if f != "-" || i+3 >= len(fields) || fields[i+1] != "cgroup" || seen[fields[4]] {
				continue
			}
			seen[fields[4]] = true
			var ctrl []string
			for _, o := range strings.Split(fields[i+3], ",") {
				if o != "rw" && o != "ro" && !strings.HasPrefix(o, "release_agent") && o != "clone_children" && o != "noprefix" && o != "xattr" && o != "cpuset_v2_mode" {
					ctrl = append(ctrl, o)
				}
			}
			out = append(out, Hierarchy{Mount: fields[4], Controllers: ctrl})
		}
	}
	return out, sc.Err()
}

func (m *v1) OOMKills() (uint64, error) {
	return readKeyed(filepath.Join(m.Dir("memory"), "memory.oom_control"), "oom_kill")
}
