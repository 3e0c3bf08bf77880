package cgroups

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
)

// v2 manages a cgroup in the unified hierarchy mounted at root.
type v2 struct {
	root string // normally /sys/fs/cgroup
	dir  string
}

func (m *v2) Dir(string) string { return m.dir }

func (m *v2) Apply(pid int) error {
	if err := m.create(); err != nil {
		return err
	}
	return write(m.dir, "cgroup.procs", itoa(int64(pid)))
}

// create makes the cgroup and enables every available controller on the
// way down, so that the leaf can take limits for each of them.
func (m *v2) create() error {
	root := m.root
	avail, err := read(root, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("cgroup v2: %w", err)
	}
	var enable []string
	for _, c := range strings.Fields(avail) {
		enable = append(enable, "+"+c)
	}
	rel, err := filepath.Rel(root, m.dir)
	if err != nil || strings.HasPrefix(rel, "..") {
		return fmt.Errorf("cgroup v2: %s is outside %s", m.dir, root)
	}
	cur := root
	for _, part := range strings.Split(rel, "/") {
		if len(enable) > 0 {
			// Best effort: a controller busy elsewhere (threaded, or the
			// parent holding processes) stays off and Set reports it.
			_ = write(cur, "cgroup.subtree_control", strings.Join(enable, " "))
		}
		cur = filepath.Join(cur, part)
		if err := os.Mkdir(cur, 0o755); err != nil && !os.IsExist(err) {
			return fmt.Errorf("cgroup v2: %w", err)
		}
	}
	return nil
}

// shares2weight maps cgroup v1 cpu.shares [2, 262144] to cpu.weight [1, 10000].
func shares2weight(s uint64) uint64 {
	if s < 2 {
		s = 2
	}
	if s > 262144 {
		s = 262144
	}
	return 1 + ((s-2)*9999)/262142
}

// blkio2io maps blkio.weight [10, 1000] to io.weight [1, 10000].
func blkio2io(w uint16) uint64 {
	return 1 + (uint64(w)-10)*9999/990
}

func (m *v2) Set(r *specs.LinuxResources) error {
	if r == nil {
		return nil
	}
	if mem := r.Memory; mem != nil {
		// cgroup v2 has no TCP buffer limit: refused, not ignored.
		if mem.KernelTCP != nil {
			return fmt.Errorf("cgroup: memory.kernelTCP is not supported on cgroup v2: %w", errdefs.ErrInvalidArgument)
		}
		if mem.Limit != nil {
			if err := write(m.dir, "memory.max", maxOr(*mem.Limit)); err != nil {
				return err
			}
		}
		if mem.Swap != nil {
			// OCI swap is memory+swap; v2 counts swap alone.
			swap := *mem.Swap
			if swap > 0 && mem.Limit != nil && *mem.Limit > 0 {
				swap -= *mem.Limit
			}
			if exists(m.dir, "memory.swap.max") {
				if err := write(m.dir, "memory.swap.max", maxOr(swap)); err != nil {
					return err
				}
			}
		}
		if mem.Reservation != nil {
			if err := write(m.dir, "memory.low", maxOr(*mem.Reservation)); err != nil {
				return err
			}
		}
	}
	if c := r.CPU; c != nil {
		if c.Shares != nil && *c.Shares != 0 {
			if err := write(m.dir, "cpu.weight", utoa(shares2weight(*c.Shares))); err != nil {
				return err
			}
		}
		if (c.Quota != nil && *c.Quota != 0) || (c.Period != nil && *c.Period != 0) {
			quota, period := "max", uint64(100000)
			if c.Quota != nil && *c.Quota > 0 {
				quota = itoa(*c.Quota)
			}
			if c.Period != nil && *c.Period != 0 {
				period = *c.Period
			}
			if err := write(m.dir, "cpu.max", quota+" "+utoa(period)); err != nil {
				return err
			}
		}
		if c.Burst != nil {
			if err := write(m.dir, "cpu.max.burst", utoa(*c.Burst)); err != nil {
				return err
			}
		}
		if c.Idle != nil {
			if err := write(m.dir, "cpu.idle", itoa(*c.Idle)); err != nil {
				return err
			}
		}
		if (c.RealtimePeriod != nil && *c.RealtimePeriod != 0) || (c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0) {
			return fmt.Errorf("cgroup: cpu.realtimePeriod and realtimeRuntime are not supported on cgroup v2: %w", errdefs.ErrInvalidArgument)
		}
		if c.Cpus != "" {
			if err := write(m.dir, "cpuset.cpus", c.Cpus); err != nil {
				return err
			}
		}
		if c.Mems != "" {
			if err := write(m.dir, "cpuset.mems", c.Mems); err != nil {
				return err
			}
		}
	}
	if r.Pids != nil {
		if err := write(m.dir, "pids.max", maxOr(pidsLimit(r.Pids))); err != nil {
			return err
		}
	}
	if b := r.BlockIO; b != nil {
		if b.Weight != nil && *b.Weight != 0 {
			if err := write(m.dir, "io.weight", utoa(blkio2io(*b.Weight))); err != nil {
				return err
			}
		}
		for _, t := range []struct {
			key  string
			list []specs.LinuxThrottleDevice
		}{{"rbps", b.ThrottleReadBpsDevice}, {"wbps", b.ThrottleWriteBpsDevice},
			{"riops", b.ThrottleReadIOPSDevice}, {"wiops", b.ThrottleWriteIOPSDevice}} {
			for _, d := range t.list {
				if err := write(m.dir, "io.max", fmt.Sprintf("%d:%d %s=%d", d.Major, d.Minor, t.key, d.Rate)); err != nil {
					return err
				}
			}
		}
	}
	for _, h := range r.HugepageLimits {
		if err := write(m.dir, "hugetlb."+h.Pagesize+".max", utoa(h.Limit)); err != nil {
			return err
		}
	}
	for dev, l := range r.Rdma {
		v := dev
		if l.HcaHandles != nil {
			v += " hca_handle=" + utoa(uint64(*l.HcaHandles))
		}
		if l.HcaObjects != nil {
			v += " hca_object=" + utoa(uint64(*l.HcaObjects))
		}
		if err := write(m.dir, "rdma.max", v); err != nil {
			return err
		}
	}
	if r.Network != nil {
		return fmt.Errorf("cgroup: network classID and priorities need cgroup v1's net_cls and net_prio: %w", errdefs.ErrInvalidArgument)
	}
	for key, value := range r.Unified {
		if strings.ContainsAny(key, "/\x00") || key == "." || key == ".." {
			return fmt.Errorf("cgroup v2: invalid unified key %q", key)
		}
		if err := write(m.dir, key, value); err != nil {
			return err
		}
	}
	if len(r.Devices) > 0 {
		return setDevicesBPF(m.dir, WithDefaultDevices(r.Devices))
	}
	return nil
}

// pidsLimit is a pids limit's number (0, no limit, when unset).
func pidsLimit(p *specs.LinuxPids) int64 {
	if p.Limit == nil {
		return 0
	}
	return *p.Limit
}

func maxOr(n int64) string {
	if n <= 0 {
		return "max"
	}
	return itoa(n)
}

func (m *v2) Pids() ([]int, error) { return readPids(m.dir) }

func (m *v2) freeze(v string) error {
	if err := write(m.dir, "cgroup.freeze", v); err != nil {
		return err
	}
	want := "frozen " + v
	for i := 0; i < 1000; i++ {
		ev, err := read(m.dir, "cgroup.events")
		if err != nil {
			return err
		}
		for _, line := range strings.Split(ev, "\n") {
			if line == want {
				return nil
			}
		}
		sleepBackoff(0)
	}
	return fmt.Errorf("cgroup v2: %s did not reach frozen=%s", m.dir, v)
}

func (m *v2) Freeze() error { return m.freeze("1") }
func (m *v2) Thaw() error   { return m.freeze("0") }

func (m *v2) Frozen() (bool, error) {
	v, err := read(m.dir, "cgroup.freeze")
	if os.IsNotExist(err) {
		return false, nil
	}
	return v == "1", err
}

func (m *v2) Destroy() error { return removeDir(m.dir) }

func (m *v2) OOMKills() (uint64, error) {
	return readKeyed(filepath.Join(m.dir, "memory.events"), "oom_kill")
}
