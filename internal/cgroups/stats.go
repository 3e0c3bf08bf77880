package cgroups

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stats are a cgroup's counters, as docker stats reports them. Times are
// nanoseconds; a counter the host lacks is zero.
type Stats struct {
	CPU struct {
		Total, User, System uint64
		PerCPU              []uint64 // v1 only
		Periods, Throttled  uint64
		ThrottledTime       uint64
	}
	Memory struct {
		Usage, MaxUsage, Failcnt uint64 // MaxUsage and Failcnt: v1 only
		// Limit is 0 when there is none.
		Limit uint64
		// Stat is memory.stat, by key.
		Stat map[string]uint64
	}
	Pids struct {
		Current uint64
		Limit   uint64 // 0 when there is none
	}
	// IOBytes and IOServiced are per device and operation ("Read",
	// "Write"... on v1, "read" and "write" on v2, as docker reports them).
	IOBytes, IOServiced []IOEntry
}

// IOEntry is one device's counter of one operation.
type IOEntry struct {
	Major, Minor uint64
	Op           string
	Value        uint64
}

// userHZ is the unit of cpuacct.stat (USER_HZ, 100 on every Linux ABI).
const userHZ = 100

// unlimited is what v1 reads back for "no limit": anything this large.
const unlimited = 1 << 62

func (m *v1) Stats() (*Stats, error) {
	s := &Stats{}
	cpuacct := m.Dir("cpuacct")
	s.CPU.Total = readUint(cpuacct, "cpuacct.usage")
	for _, f := range strings.Fields(readString(cpuacct, "cpuacct.usage_percpu")) {
		n, _ := strconv.ParseUint(f, 10, 64)
		s.CPU.PerCPU = append(s.CPU.PerCPU, n)
	}
	acct := readFlat(cpuacct, "cpuacct.stat")
	s.CPU.User, s.CPU.System = acct["user"]*1e9/userHZ, acct["system"]*1e9/userHZ
	cpu := readFlat(m.Dir("cpu"), "cpu.stat")
	s.CPU.Periods, s.CPU.Throttled, s.CPU.ThrottledTime = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_time"]

	mem := m.Dir("memory")
	s.Memory.Usage = readUint(mem, "memory.usage_in_bytes")
	s.Memory.MaxUsage = readUint(mem, "memory.max_usage_in_bytes")
	s.Memory.Failcnt = readUint(mem, "memory.failcnt")
	if l := readUint(mem, "memory.limit_in_bytes"); l < unlimited {
		s.Memory.Limit = l
	}
	s.Memory.Stat = readFlat(mem, "memory.stat")

	pids := m.Dir("pids")
	s.Pids.Current = readUint(pids, "pids.current")
	s.Pids.Limit = readUint(pids, "pids.max") // "max" parses as 0

	blkio := m.Dir("blkio")
	s.IOBytes = readBlkio(filepath.Join(blkio, "blkio.throttle.io_service_bytes_recursive"))
	s.IOServiced = readBlkio(filepath.Join(blkio, "blkio.throttle.io_serviced_recursive"))
	return s, nil
}

func (m *v2) Stats() (*Stats, error) {
	s := &Stats{}
	cpu := readFlat(m.dir, "cpu.stat")
	s.CPU.Total, s.CPU.User, s.CPU.System = cpu["usage_usec"]*1000, cpu["user_usec"]*1000, cpu["system_usec"]*1000
	s.CPU.Periods, s.CPU.Throttled, s.CPU.ThrottledTime = cpu["nr_periods"], cpu["nr_throttled"], cpu["throttled_usec"]*1000
	s.Memory.Usage = readUint(m.dir, "memory.current")
	s.Memory.Limit = readUint(m.dir, "memory.max") // "max" parses as 0
	s.Memory.Stat = readFlat(m.dir, "memory.stat")
	s.Pids.Current = readUint(m.dir, "pids.current")
	s.Pids.Limit = readUint(m.dir, "pids.max")
	// io.stat: "MAJ:MIN rbytes=N wbytes=N rios=N wios=N dbytes=N dios=N".
	for _, line := range strings.Split(readString(m.dir, "io.stat"), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		major, minor, ok := parseDevice(fields[0])
		if !ok {
			continue
		}
		for _, kv := range fields[1:] {
			k, v, _ := strings.Cut(kv, "=")
			n, _ := strconv.ParseUint(v, 10, 64)
			switch k {
			case "rbytes":
				s.IOBytes = append(s.IOBytes, IOEntry{major, minor, "read", n})
			case "wbytes":
				s.IOBytes = append(s.IOBytes, IOEntry{major, minor, "write", n})
			case "rios":
				s.IOServiced = append(s.IOServiced, IOEntry{major, minor, "read", n})
			case "wios":
				s.IOServiced = append(s.IOServiced, IOEntry{major, minor, "write", n})
			}
		}
	}
	return s, nil
}

func readString(dir, file string) string {
	b, _ := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b))
}

func readUint(dir, file string) uint64 {
	n, _ := strconv.ParseUint(readString(dir, file), 10, 64)
	return n
}

// readFlat reads a flat keyed file ("key value" lines).
func readFlat(dir, file string) map[string]uint64 {
	out := map[string]uint64{}
	for _, line := range strings.Split(readString(dir, file), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			if err == nil {
				out[k] = n
			}
		}
	}
	return out
}

// readBlkio reads a v1 blkio file: "MAJ:MIN Op value" lines (and a
// device-less "Total value" line, left out).
func readBlkio(path string) []IOEntry {
	b, _ := os.ReadFile(path)
	var out []IOEntry
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		major, minor, ok := parseDevice(f[0])
		n, err := strconv.ParseUint(f[2], 10, 64)
		if ok && err == nil {
			out = append(out, IOEntry{major, minor, f[1], n})
		}
	}
	return out
}

func parseDevice(s string) (major, minor uint64, ok bool) {
	a, b, found := strings.Cut(s, ":")
	if !found {
		return 0, 0, false
	}
	major, err1 := strconv.ParseUint(a, 10, 64)
	minor, err2 := strconv.ParseUint(b, 10, 64)
	return major, minor, err1 == nil && err2 == nil
}
