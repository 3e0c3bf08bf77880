package stats

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/cgroups"
)

// counter is a running container's samples, numbered by their CPU total.
type counter struct{ n uint64 }

func (c *counter) sample() *container.StatsResponse {
	c.n++
	return &container.StatsResponse{Read: time.Now(), CPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: c.n}}}
}

func TestStream(t *testing.T) {
	ctx := context.Background()
	var got []*container.StatsResponse
	send := func(s *container.StatsResponse) error { got = append(got, s); return nil }

	// One sample, primed: its precpu_stats are an earlier sample's.
	c := &counter{}
	start := time.Now()
	if err := Stream(ctx, false, false, c.sample, send); err != nil || len(got) != 1 {
		t.Fatalf("stream=false: %d samples, %v", len(got), err)
	}
	if s := got[0]; s.CPUStats.CPUUsage.TotalUsage != 2 || s.PreCPUStats.CPUUsage.TotalUsage != 1 || time.Since(start) < primeInterval {
		t.Errorf("primed sample: cpu %d precpu %d after %v", s.CPUStats.CPUUsage.TotalUsage, s.PreCPUStats.CPUUsage.TotalUsage, time.Since(start))
	}

	// one-shot: one sample, no precpu.
	got, c = nil, &counter{}
	if err := Stream(ctx, false, true, c.sample, send); err != nil || len(got) != 1 || c.n != 1 || got[0].PreRead != (time.Time{}) {
		t.Errorf("one-shot: %d samples of %d, %v", len(got), c.n, err)
	}

	// A stream goes on until its client stops it, each sample primed by
	// the one before.
	got, c = nil, &counter{}
	stop := errors.New("enough")
	err := Stream(ctx, true, false, c.sample, func(s *container.StatsResponse) error {
		got = append(got, s)
		if len(got) == 2 {
			return stop
		}
		return nil
	})
	if err != stop || len(got) != 2 || got[1].PreCPUStats.CPUUsage.TotalUsage != 1 {
		t.Errorf("stream: %d samples, %v", len(got), err)
	}

	// A container that does not run: one empty sample.
	got = nil
	empty := func() *container.StatsResponse { return &container.StatsResponse{} }
	if err := Stream(ctx, true, false, empty, send); err != nil || len(got) != 1 {
		t.Errorf("a stopped container's stream: %d samples, %v", len(got), err)
	}
}

func TestFill(t *testing.T) {
	var cs cgroups.Stats
	cs.CPU.Total, cs.CPU.User = 5e9, 4e9
	cs.Memory.Usage = 1 << 20
	cs.Pids.Current = 3
	cs.IOBytes = []cgroups.IOEntry{{Major: 8, Minor: 0, Op: "Read", Value: 4096}}
	var s container.StatsResponse
	Fill(&s, &cs, os.Getpid(), true)
	if s.Read.IsZero() || s.CPUStats.CPUUsage.TotalUsage != 5e9 || s.CPUStats.SystemUsage == 0 || s.CPUStats.OnlineCPUs == 0 {
		t.Errorf("cpu: %+v", s.CPUStats)
	}
	if s.MemoryStats.Usage != 1<<20 || s.MemoryStats.Limit != machineMemory() || s.MemoryStats.Limit == 0 {
		t.Errorf("memory (no limit: the machine's): %+v", s.MemoryStats)
	}
	if s.PidsStats.Current != 3 || len(s.BlkioStats.IoServiceBytesRecursive) != 1 || s.BlkioStats.IoServicedRecursive == nil {
		t.Errorf("pids and blkio: %+v %+v", s.PidsStats, s.BlkioStats)
	}
	if _, lo := s.Networks["lo"]; s.Networks == nil || lo {
		t.Errorf("networks (this process's, loopback left out): %v", s.Networks)
	}
}
