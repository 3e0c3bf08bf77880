// Command bench measures tent against the engines it replaces, side by side
// in one run on this machine: tent's daemon against Debian's docker.io
// (both driven by the same docker CLI, interleaved) and tent-runtime
// against runc. It starts everything it needs in temporary directories (the
// two daemons and a local registry), writes a Markdown report with the
// medians, spreads and tent/reference ratios, and draws the ratios as a PNG
// chart.
//
//	go run ./bench -bin bin -out bench      # make bench: the committed report
//	go run ./bench -bin bin -quick          # make bench-quick: small counts, stdout
//	go run ./bench -bin bin -against /tmp/old -only run   # this build against another
//
// Benchmarks are reports, never assertions: the test suite only checks that
// this harness runs in quick mode (test/integration/bench_test.go).
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// sizes are the counts of one benchmark run: the full run reported in
// bench/RESULTS.md, or the quick one used while developing.
type sizes struct {
	runs      int   // samples per latency figure, after warm-up
	warmup    int   // unmeasured runs before the samples
	heavyRuns int   // samples per batch or image figure
	batch     int   // containers per run -d throughput sample
	sleepers  []int // idle containers for the memory figures
	psN       int   // containers listed by the ps figure
	imageMB   int   // size of the generated multi-layer image
	netScale  int   // containers on one network for the scale figure
	vms       int   // identical idle VMs for the memory figure
}

var (
	fullSizes  = sizes{runs: 30, warmup: 3, heavyRuns: 3, batch: 100, sleepers: []int{20, 200}, psN: 1000, imageMB: 200, netScale: 2000, vms: 10}
	quickSizes = sizes{runs: 3, warmup: 1, heavyRuns: 1, batch: 10, sleepers: []int{5, 10}, psN: 50, imageMB: 24, netScale: 20, vms: 2}
)

func main() {
	bin := flag.String("bin", "bin", "directory holding tent, tent-runtime and tent-monitor")
	out := flag.String("out", "", "write RESULTS.md and ratios.png into this directory (default: print the report only)")
	quick := flag.Bool("quick", false, "small counts, for use while developing (under 2 minutes)")
	only := flag.String("only", "", "comma-separated groups to run (runtime, daemon, run, batch, sleepers, ps, image, net, build, lifecycle, vm; default all)")
	writeImage := flag.String("write-image", "", "only write the generated image (docker-save archive) to this file")
	against := flag.String("against", "", "compare with the tent build in this directory instead of docker (an A/B of a change, interleaved run by run)")
	flag.Parse()
	sz := fullSizes
	mode := "full"
	if *quick {
		sz, mode = quickSizes, "quick"
	}
	if *writeImage != "" {
		if _, err := writeBigImage(*writeImage, sz.imageMB); err != nil {
			fail(err)
		}
		return
	}
	binDir, err := filepath.Abs(*bin)
	if err != nil {
		fail(err)
	}
	for _, need := range []string{"dockerd", "docker", "docker-registry", "runc"} {
		if _, err := exec.LookPath(need); err != nil {
			fail(fmt.Errorf("%s is not installed: run ./scripts/deps.sh", need))
		}
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		fail(fmt.Errorf("interrupted"))
	}()
	defer cleanup()

	started := time.Now()
	s := &suite{sizes: sz, binDir: binDir}
	if *against != "" {
		if s.against, err = filepath.Abs(*against); err != nil {
			fail(err)
		}
		if *only == "" || strings.Contains(*only, "runtime") {
			fail(fmt.Errorf("-against compares daemons: choose groups with -only (run, batch, ps, ...)"))
		}
	}
	s.prepare()
	groups := []struct {
		name string
		run  func()
	}{
		{"runtime", s.runtimeFigure}, {"daemon", s.idleDaemonFigure}, {"run", s.runRmFigure}, {"batch", s.batchFigure},
		{"sleepers", s.sleeperFigures}, {"ps", s.psFigure}, {"image", s.imageFigures}, {"net", s.netFigures},
		{"build", s.buildFigures}, {"lifecycle", s.lifecycleFigures}, {"vm", s.vmFigures},
		// Last: dockerd 20.10 has hung in the removal of its 1,022
		// containers after it (sessions 17, 18), which ends its figures.
		{"scale", s.scaleFigure},
	}
	selected := map[string]bool{}
	for _, g := range groups {
		selected[g.name] = *only == ""
	}
	for _, g := range strings.Split(*only, ",") {
		if _, ok := selected[g]; !ok && g != "" {
			fail(fmt.Errorf("-only: no group %q", g))
		}
		selected[g] = true
	}
	for _, g := range groups {
		if !selected[g.name] {
			continue
		}
		if g.name != "runtime" && s.tent == nil {
			s.startEngines()
		}
		g.run()
	}
	report := s.report(mode, time.Since(started))
	fmt.Print(report)
	if *out != "" {
		if err := os.MkdirAll(*out, 0o755); err != nil {
			fail(err)
		}
		if err := os.WriteFile(filepath.Join(*out, "RESULTS.md"), []byte(report), 0o644); err != nil {
			fail(err)
		}
		if err := chart(s.figures, filepath.Join(*out, "ratios.png")); err != nil {
			fail(err)
		}
	}
}

// cleanups run in reverse order at exit, also after a failure or ^C, so
// that no daemon, mount, cgroup or temporary directory outlives the run.
var (
	cleanupMu sync.Mutex
	cleanups  []func()
)

func atExit(f func()) {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	cleanups = append(cleanups, f)
}

func cleanup() {
	cleanupMu.Lock()
	defer cleanupMu.Unlock()
	for i := len(cleanups) - 1; i >= 0; i-- {
		cleanups[i]()
	}
	cleanups = nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench:", err)
	cleanup()
	os.Exit(1)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
