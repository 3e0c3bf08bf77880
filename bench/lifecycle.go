package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// lifecycleFigures: `stats --no-stream` over 100 running containers
// (through the docker CLI, and each engine's own), and `cp` of a 100 MB
// tree into a container's tmpfs volume and out of it (to a tmpfs),
// through the docker CLI for both engines and through each one's own
// (issue 17's goals: 1/5 and 1/2 of docker's time).
func (s *suite) lifecycleFigures() {
	n := s.batch
	for _, e := range []*engine{s.tent, s.docker} {
		parallel(n, clients, func(int) { e.docker("run", "-d", "--network", "none", "busybox:bench", "sleep", "100000") })
	}
	stats := &figure{name: fmt.Sprintf("`stats --no-stream` of %d running containers", n), label: "stats --no-stream", unit: "ms",
		ref: "docker", goal: atMostRatio(0.2)}
	stats.tent, stats.other = interleave(s.heavyRuns*3, 1,
		func() float64 { return ms(s.tent.timed("stats", "--no-stream")) },
		func() float64 { return ms(s.docker.timed("stats", "--no-stream")) })
	s.add(stats)
	// The docker CLI up to 28 prints --no-stream at its first 500 ms tick
	// however soon the samples come: each engine's own CLI as well.
	own := &figure{name: fmt.Sprintf("`stats --no-stream` of %d running containers, each engine's own CLI", n),
		label: "stats --no-stream (own CLI)", unit: "ms", ref: "docker", goal: atMostRatio(0.2)}
	own.tent, own.other = interleave(s.heavyRuns*3, 1,
		func() float64 { return ms(s.tent.timedWith(s.tent.cli, "stats", "--no-stream")) },
		func() float64 { return ms(s.docker.timedWith(s.docker.cli, "stats", "--no-stream")) })
	s.add(own)
	s.tent.removeAll()
	s.docker.removeAll()

	tree := filepath.Join(s.work, "cp-tree")
	if err := cpTree(tree, s.imageMB/2); err != nil {
		fail(err)
	}
	// The copies go to and come from a tmpfs volume on both engines: the
	// disk's writeback, after the gigabytes the figures before wrote,
	// made either engine's copy in take 0.5 to 1.7 s by turns.
	for _, e := range []*engine{s.tent, s.docker} {
		e.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=2g", "cp-vol")
		e.docker("run", "-d", "--name", "cp-target", "--network", "none", "-v", "cp-vol:/cp", "busybox:bench", "sleep", "100000")
	}
	// Into a tmpfs: extracting a thousand files on this disk costs the
	// client (the same for both) several times what the engine does.
	dst := filepath.Join("/dev/shm", fmt.Sprintf("tent-bench-cp-out-%d", os.Getpid()))
	copies := map[*engine]int{}
	// Through the docker CLI for both, then each engine's own: the docker
	// CLI's tar of the tree is most of docker's time and all of a floor.
	for _, own := range []bool{false, true} {
		client, suffix, label := func(*engine) string { return "docker" }, "", ""
		if own {
			client, suffix, label = func(e *engine) string { return e.cli }, ", each engine's own CLI", " (own CLI)"
		}
		copyIn := func(e *engine) float64 {
			copies[e]++ // a new directory each time: the same work for both
			in := fmt.Sprintf("/cp/in%d", copies[e])
			took := ms(e.timedWith(client(e), "cp", tree, "cp-target:"+in))
			if copies[e] > 1 { // the first stays, to be copied out
				e.docker("exec", "cp-target", "busybox", "rm", "-rf", in)
			}
			return took
		}
		in := &figure{name: fmt.Sprintf("`cp` of a %d MB tree into a running container%s", s.imageMB/2, suffix), label: "cp in" + label, unit: "ms",
			ref: "docker", goal: atMostRatio(0.5)}
		in.tent, in.other = interleave(s.heavyRuns, 1, func() float64 { return copyIn(s.tent) }, func() float64 { return copyIn(s.docker) })
		s.add(in)
		copyOut := func(e *engine) float64 {
			os.RemoveAll(dst)
			return ms(e.timedWith(client(e), "cp", "cp-target:/cp/in1", dst))
		}
		out := &figure{name: fmt.Sprintf("`cp` of a %d MB tree out of a running container%s", s.imageMB/2, suffix), label: "cp out" + label, unit: "ms",
			ref: "docker", goal: atMostRatio(0.5)}
		out.tent, out.other = interleave(s.heavyRuns, 1, func() float64 { return copyOut(s.tent) }, func() float64 { return copyOut(s.docker) })
		s.add(out)
	}
	os.RemoveAll(dst)
	os.RemoveAll(tree)
	s.tent.removeAll()
	s.docker.removeAll()
	for _, e := range []*engine{s.tent, s.docker} {
		e.docker("volume", "rm", "cp-vol")
	}
}

// cpTree writes mb megabytes of files: 100 directories of 10 files.
func cpTree(dir string, mb int) error {
	r := rand.New(rand.NewPCG(1, 2))
	size := mb << 20 / 1000
	buf := make([]byte, size)
	for d := range 100 {
		sub := filepath.Join(dir, fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		for f := range 10 {
			for i := range buf {
				buf[i] = byte(r.Uint32())
			}
			if err := os.WriteFile(filepath.Join(sub, fmt.Sprintf("f%d", f)), buf, 0o644); err != nil {
				return err
			}
		}
	}
	return nil
}
