// Package stats makes the Engine API's stats samples from a task's
// resource counters as dockerd reports them (CPU against the host's time
// and CPUs, memory against the machine's when unlimited, pids, block
// I/O, the container's own network interfaces), and paces them: a
// stream, or one sample primed for its CPU figure.
package stats

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/cgroups"
	"golang.org/x/sys/unix"
)

// statsInterval is the time between streamed samples (dockerd's).
const statsInterval = time.Second

// primeInterval is how long before a single sample (stream=false) its
// precpu_stats are read, so that the CPU percentage covers an interval.
// dockerd waits for its collector's next tick, up to a second; a fifth
// of one gives the same figure within its noise, five times sooner.
const primeInterval = 200 * time.Millisecond

// Stream sends samples (GET /containers/{id}/stats): with stream one
// every second until ctx ends or the container stops, else one, primed
// for its CPU figure unless oneShot. sample reads the counters now; a
// zero Read means the container does not run, which ends the stream.
func Stream(ctx context.Context, stream, oneShot bool, sample func() *container.StatsResponse, send func(*container.StatsResponse) error) error {
	var prev *container.StatsResponse
	if !stream && !oneShot {
		if prev = sample(); prev.Read.IsZero() {
			return send(prev)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(primeInterval):
		}
	}
	tick := time.NewTicker(statsInterval)
	defer tick.Stop()
	for {
		s := sample()
		if prev != nil {
			s.PreRead, s.PreCPUStats = prev.Read, prev.CPUStats
		}
		if err := send(s); err != nil || !stream || s.Read.IsZero() {
			return err
		}
		prev = s
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// Fill puts the counters cs into s (read now); pid's network interfaces
// with ownNet (a container with a network namespace of its own).
func Fill(s *container.StatsResponse, cs *cgroups.Stats, pid int, ownNet bool) {
	s.Read = time.Now().UTC()
	s.CPUStats = container.CPUStats{
		CPUUsage: container.CPUUsage{TotalUsage: cs.CPU.Total, PercpuUsage: cs.CPU.PerCPU,
			UsageInKernelmode: cs.CPU.System, UsageInUsermode: cs.CPU.User},
		SystemUsage: systemCPUUsage(),
		OnlineCPUs:  onlineCPUs(),
		ThrottlingData: container.ThrottlingData{Periods: cs.CPU.Periods, ThrottledPeriods: cs.CPU.Throttled,
			ThrottledTime: cs.CPU.ThrottledTime},
	}
	limit := cs.Memory.Limit
	if total := machineMemory(); limit == 0 || limit > total && total > 0 {
		limit = total // no limit, or one above the machine's: the machine's, as dockerd reports
	}
	s.MemoryStats = container.MemoryStats{Usage: cs.Memory.Usage, MaxUsage: cs.Memory.MaxUsage, Stats: cs.Memory.Stat,
		Failcnt: cs.Memory.Failcnt, Limit: limit}
	s.PidsStats = container.PidsStats{Current: cs.Pids.Current, Limit: cs.Pids.Limit}
	s.BlkioStats = container.BlkioStats{IoServiceBytesRecursive: blkioEntries(cs.IOBytes), IoServicedRecursive: blkioEntries(cs.IOServiced)}
	if ownNet {
		s.Networks = netDev(pid)
	}
}

func blkioEntries(in []cgroups.IOEntry) []container.BlkioStatEntry {
	out := []container.BlkioStatEntry{}
	for _, e := range in {
		out = append(out, container.BlkioStatEntry{Major: e.Major, Minor: e.Minor, Op: e.Op, Value: e.Value})
	}
	return out
}

// clockTicks is USER_HZ, the unit of /proc/stat.
const clockTicks = 100

// systemCPUUsage is the host's CPU time in nanoseconds (the first line of
// /proc/stat, user to softirq, as dockerd sums it).
func systemCPUUsage() uint64 {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0
	}
	defer f.Close()
	line, _ := bufio.NewReader(f).ReadString('\n')
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		return 0
	}
	var ticks uint64
	for _, v := range fields[1:8] {
		n, _ := strconv.ParseUint(v, 10, 64)
		ticks += n
	}
	return ticks * uint64(time.Second) / clockTicks
}

func onlineCPUs() uint32 {
	var set unix.CPUSet
	if unix.SchedGetaffinity(0, &set) == nil && set.Count() > 0 {
		return uint32(set.Count())
	}
	return 1
}

// machineMemory is the host's memory in bytes (MemTotal), read once.
var machineMemory = sync.OnceValue(func() uint64 {
	b, _ := os.ReadFile("/proc/meminfo")
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "MemTotal:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
})

// netDev reads the interfaces of pid's network namespace (loopback left
// out, as dockerd does) from /proc/PID/net/dev.
func netDev(pid int) map[string]container.NetworkStats {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return nil
	}
	out := map[string]container.NetworkStats{}
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) < 2 {
		return nil
	}
	for _, line := range lines[2:] {
		name, rest, ok := strings.Cut(string(line), ":")
		name = strings.TrimSpace(name)
		if !ok || name == "lo" {
			continue
		}
		f := strings.Fields(rest)
		if len(f) < 16 {
			continue
		}
		n := func(i int) uint64 { v, _ := strconv.ParseUint(f[i], 10, 64); return v }
		out[name] = container.NetworkStats{RxBytes: n(0), RxPackets: n(1), RxErrors: n(2), RxDropped: n(3),
			TxBytes: n(8), TxPackets: n(9), TxErrors: n(10), TxDropped: n(11)}
	}
	return out
}
