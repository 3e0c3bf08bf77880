package runtime

import (
	"fmt"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Process attributes of the OCI spec beyond credentials: scheduler, I/O
// priority, personality and CPU affinity. Each is checked into a
// procAttrs before the container is reported ready and applied by the
// process itself on its way to exec.

type procAttrs struct {
	sched       *schedAttr
	ioprio      int
	personality int // -1: leave alone
	affinity    *unix.CPUSet
}

// schedAttr is the kernel's struct sched_attr (sched_setattr(2)).
type schedAttr struct {
	size                   uint32
	policy                 uint32
	flags                  uint64
	nice                   int32
	priority               uint32
	runtime, deadline, per uint64
	_                      [2]uint32 // sched_util_min, sched_util_max
}

var schedPolicies = map[specs.LinuxSchedulerPolicy]uint32{
	specs.SchedOther: 0, specs.SchedFIFO: 1, specs.SchedRR: 2, specs.SchedBatch: 3,
	specs.SchedISO: 4, specs.SchedIdle: 5, specs.SchedDeadline: 6,
}

var schedFlags = map[specs.LinuxSchedulerFlag]uint64{
	specs.SchedFlagResetOnFork: 0x01, specs.SchedFlagReclaim: 0x02, specs.SchedFlagDLOverrun: 0x04,
	specs.SchedFlagKeepPolicy: 0x08, specs.SchedFlagKeepParams: 0x10, specs.SchedFlagUtilClampMin: 0x20,
	specs.SchedFlagUtilClampMax: 0x40,
}

var ioClasses = map[specs.IOPriorityClass]int{
	specs.IOPRIO_CLASS_RT: 1, specs.IOPRIO_CLASS_BE: 2, specs.IOPRIO_CLASS_IDLE: 3,
}

// parseProcAttrs checks the attributes of p (and, for an init, of the
// spec's personality); affinity is execCPUAffinity's final set, which
// applies to exec'd processes only.
func parseProcAttrs(p *specs.Process, pers *specs.LinuxPersonality, exec bool) (*procAttrs, error) {
	a := &procAttrs{personality: -1}
	if s := p.Scheduler; s != nil {
		policy, ok := schedPolicies[s.Policy]
		if !ok {
			return nil, invalid("process.scheduler: unknown policy %q", s.Policy)
		}
		a.sched = &schedAttr{policy: policy, nice: s.Nice, priority: uint32(s.Priority),
			runtime: s.Runtime, deadline: s.Deadline, per: s.Period}
		a.sched.size = uint32(unsafe.Sizeof(*a.sched))
		for _, f := range s.Flags {
			v, ok := schedFlags[f]
			if !ok {
				return nil, invalid("process.scheduler: unknown flag %q", f)
			}
			a.sched.flags |= v
		}
	}
	if io := p.IOPriority; io != nil {
		class, ok := ioClasses[io.Class]
		if !ok {
			return nil, invalid("process.ioPriority: unknown class %q", io.Class)
		}
		if io.Priority < 0 || io.Priority > 7 {
			return nil, invalid("process.ioPriority: priority %d is not in 0..7", io.Priority)
		}
		a.ioprio = class<<13 | int(io.Priority)
	}
	if pers != nil {
		switch pers.Domain {
		case specs.PerLinux:
			a.personality = 0 // PER_LINUX
		case specs.PerLinux32:
			a.personality = 8 // PER_LINUX32
		default:
			return nil, invalid("linux.personality: unknown domain %q", pers.Domain)
		}
		if len(pers.Flags) > 0 {
			return nil, invalid("linux.personality: unknown flags %v", pers.Flags)
		}
	}
	if c := p.ExecCPUAffinity; c != nil && exec {
		for _, list := range []string{c.Initial, c.Final} {
			if list == "" {
				continue
			}
			set, err := parseCPUList(list)
			if err != nil {
				return nil, invalid("process.execCPUAffinity: %v", err)
			}
			a.affinity = set // the final set wins; see apply
		}
	}
	return a, nil
}

// parseCPUList reads a list such as "0-3,7".
func parseCPUList(list string) (*unix.CPUSet, error) {
	set := &unix.CPUSet{}
	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(part), "-")
		first, err := strconv.Atoi(lo)
		last := first
		if err == nil && isRange {
			last, err = strconv.Atoi(hi)
		}
		if err != nil || first < 0 || last < first || last >= 1024 {
			return nil, fmt.Errorf("bad CPU list %q", list)
		}
		for cpu := first; cpu <= last; cpu++ {
			set.Set(cpu)
		}
	}
	return set, nil
}

// apply sets the attributes on this thread (and so on the program it
// executes). It runs while the process still has its capabilities: a
// real-time policy or I/O class needs them.
func (a *procAttrs) apply() error {
	if a.personality >= 0 {
		if _, _, e := unix.RawSyscall(unix.SYS_PERSONALITY, uintptr(a.personality), 0, 0); e != 0 {
			return fmt.Errorf("personality: %w", e)
		}
	}
	if a.ioprio != 0 {
		const ioprioWhoProcess = 1
		if _, _, e := unix.RawSyscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(a.ioprio)); e != 0 {
			return fmt.Errorf("ioprio_set: %w", e)
		}
	}
	if a.sched != nil {
		if _, _, e := unix.RawSyscall(unix.SYS_SCHED_SETATTR, 0, uintptr(unsafe.Pointer(a.sched)), 0); e != 0 {
			return fmt.Errorf("sched_setattr: %w", e)
		}
	}
	if a.affinity != nil {
		if err := unix.SchedSetaffinity(0, a.affinity); err != nil {
			return fmt.Errorf("sched_setaffinity: %w", err)
		}
	}
	return nil
}
