package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// A figure is one row of the report: samples of a cost (time or memory;
// lower is better) for tent and for the reference it replaces.
type figure struct {
	name   string // the report's row
	label  string // the chart's bar
	unit   string // of the samples: "ms", "s" or "MiB"
	ref    string // "docker" or "runc"
	tent   []float64
	other  []float64
	per    float64 // work done per sample (MB, containers) for a rate column
	perFmt string  // the rate's format, e.g. "%.0f MB/s"
	goal   goal
}

// A goal is what the issues ask of a figure; tent's median and the ratio
// of medians decide whether it is met.
type goal struct {
	text string
	met  func(tentMedian, ratio float64) bool
}

func atMostRatio(r float64) goal {
	return goal{fmt.Sprintf("ratio ≤ %.2f", r), func(_, ratio float64) bool { return ratio <= r }}
}

func below(v float64, unit string) goal {
	return goal{fmt.Sprintf("< %g %s", v, unit), func(med, _ float64) bool { return med < v }}
}

func (f *figure) ratio() float64 {
	t, _, _ := summary(f.tent)
	o, _, _ := summary(f.other)
	return t / o
}

// suite holds what the figures share: the engines, the registry and the
// inputs made once per run.
type suite struct {
	sizes
	binDir  string
	work    string
	busybox string // rootfs tarball of the host's static busybox
	bundle  string // OCI bundle for the runtime figure
	image   bigImage
	tent    *engine
	docker  *engine // the reference: dockerd, or with -against another tent build
	against string  // -against: the other tent build's directory
	reg     *registry
	figures []*figure
}

func (s *suite) add(f *figure) {
	if s.against != "" && f.ref == "docker" {
		f.ref, f.goal = "tent in "+s.against, goal{}
	}
	s.figures = append(s.figures, f)
	t, _, _ := summary(f.tent)
	o, _, _ := summary(f.other)
	logf("%s: tent %.2f %s, %s %.2f %s, ratio %.2f", f.name, t, f.unit, f.ref, o, f.unit, f.ratio())
}

// interleave takes n samples of each side after warm-up runs, alternating
// which side goes first so that neither always inherits a warm cache.
// Each sample starts on a quiet machine (settle).
func interleave(n, warmup int, tent, other func() float64) (ts, rs []float64) {
	for i := 0; i < warmup+n; i++ {
		first, second := tent, other
		if i%2 == 1 {
			first, second = other, tent
		}
		settle()
		a := first()
		settle()
		b := second()
		t, o := a, b
		if i%2 == 1 {
			t, o = b, a
		}
		if i >= warmup {
			ts, rs = append(ts, t), append(rs, o)
		}
	}
	return ts, rs
}

func (s *suite) prepare() {
	var err error
	if s.work, err = os.MkdirTemp("", "bench-work-"); err != nil {
		fail(err)
	}
	atExit(func() { os.RemoveAll(s.work) })
	rootfs := filepath.Join(s.work, "rootfs")
	if err := busyboxRootfs(rootfs); err != nil {
		fail(err)
	}
	s.busybox = filepath.Join(s.work, "busybox.tar")
	if out, err := exec.Command("tar", "-C", rootfs, "-cf", s.busybox, ".").CombinedOutput(); err != nil {
		fail(fmt.Errorf("tar: %v: %s", err, out))
	}
	s.bundle = filepath.Join(s.work, "bundle")
	if err := makeBundle(s.bundle, rootfs); err != nil {
		fail(err)
	}
	logf("generating a %d MB multi-layer image", s.imageMB)
	if s.image, err = writeBigImage(filepath.Join(s.work, "big.tar"), s.imageMB); err != nil {
		fail(err)
	}
}

func (s *suite) startEngines() {
	tent := filepath.Join(s.binDir, "tent")
	s.tent = startEngine("tent", tent, tent, "daemon")
	if s.against != "" {
		other := filepath.Join(s.against, "tent")
		s.docker = startEngine("tent-against", other, other, "daemon")
	} else {
		makeDockerBridge()
		s.docker = startEngine("docker", "docker", "dockerd", "-b", dockerBridge, "--iptables=false", "--ip-masq=false", "--ip6tables=false")
	}
	for _, e := range s.engines() {
		e.docker("import", "--change", `CMD ["sh"]`, s.busybox, "busybox:bench")
	}
	s.reg = startRegistry()
}

func (s *suite) engines() []*engine { return []*engine{s.tent, s.docker} }

// runtimeFigure: create + start + delete of a bare bundle, tent-runtime
// against runc, no daemon involved.
func (s *suite) runtimeFigure() {
	tent := filepath.Join(s.binDir, "tent-runtime")
	runc, _ := exec.LookPath("runc")
	i := 0
	cycleMs := func(bin string) func() float64 {
		return func() float64 {
			i++
			d, err := cycle(bin, filepath.Join(s.work, "state-"+filepath.Base(bin)), s.bundle, i)
			if err != nil {
				fail(err)
			}
			return ms(d)
		}
	}
	f := &figure{name: "create + start + delete of a busybox bundle (`true`)", label: "runtime: create+start+delete",
		unit: "ms", ref: "runc", goal: atMostRatio(1)}
	f.tent, f.other = interleave(s.runs*3, s.warmup, cycleMs(tent), cycleMs(runc))
	s.add(f)
}

// idleDaemonFigure: the daemons' resident memory before any container ran.
func (s *suite) idleDaemonFigure() {
	f := &figure{name: "daemon RSS, idle (docker: dockerd + containerd)", label: "daemon RSS idle",
		unit: "MiB", ref: "docker", goal: below(40, "MiB")}
	f.tent, f.other = s.memorySamples(func(e *engine) float64 { return daemonRSS(e) })
	s.add(f)
}

func daemonRSS(e *engine) float64 {
	var kb float64
	for _, pid := range e.daemonPids() {
		kb += rssKB(pid)
	}
	return kb / 1024
}

// memorySamples reads a memory figure of each engine a few times, half a
// second apart (memory is a level, not an event: the spread shows whether
// it had settled).
func (s *suite) memorySamples(read func(*engine) float64) (tent, docker []float64) {
	for i := 0; i < 3; i++ {
		if i > 0 {
			time.Sleep(500 * time.Millisecond)
		}
		tent, docker = append(tent, read(s.tent)), append(docker, read(s.docker))
	}
	return tent, docker
}

// runRmFigure: `run --rm busybox true`, both engines driven by the docker
// CLI, then each by its own CLI (what a user of each types).
func (s *suite) runRmFigure() {
	for _, own := range []bool{false, true} {
		f := &figure{name: "`run --rm busybox true`, docker CLI for both", label: "run --rm (docker CLI)", unit: "ms", ref: "docker", goal: atMostRatio(0.10)}
		if own {
			f.name, f.label = "`run --rm busybox true`, each engine's own CLI", "run --rm (own CLI)"
		}
		run := func(e *engine) func() float64 {
			client := "docker"
			if own {
				client = e.cli
			}
			return func() float64 {
				return ms(e.timedWith(client, "run", "--rm", "--network", "none", "busybox:bench", "true"))
			}
		}
		f.tent, f.other = interleave(s.runs, s.warmup, run(s.tent), run(s.docker))
		s.add(f)
	}
}

const clients = 4 // concurrent docker CLI processes for batch figures

// batchFigure: `run -d` of a batch of sleepers from 4 concurrent clients.
func (s *suite) batchFigure() {
	f := &figure{name: fmt.Sprintf("`run -d` of %d containers (%d concurrent clients)", s.batch, clients),
		label: fmt.Sprintf("run -d x%d throughput", s.batch), unit: "s", ref: "docker",
		per: float64(s.batch), perFmt: "%.1f containers/s"}
	batch := func(e *engine) func() float64 {
		return func() float64 {
			t0 := time.Now()
			parallel(s.batch, clients, func(int) {
				e.docker("run", "-d", "--network", "none", "busybox:bench", "sleep", "100000")
			})
			d := time.Since(t0)
			e.removeAll()
			return d.Seconds()
		}
	}
	f.tent, f.other = interleave(s.heavyRuns, 0, batch(s.tent), batch(s.docker))
	s.add(f)
}

// sleeperFigures: host memory per idle container, counting every process
// the engine added (container, monitor or shim) and what the daemons
// grew by, as proportional set size; and the daemons' RSS with the most
// sleepers running.
func (s *suite) sleeperFigures() {
	last := s.sleepers[len(s.sleepers)-1]
	for _, n := range s.sleepers {
		// What each engine added: the processes that appeared while its
		// sleepers started, and what its daemons grew by.
		added := map[*engine][]int{}
		daemonBefore := map[*engine]float64{}
		for _, e := range s.engines() {
			before, daemon := allPids(), daemonPSS(e)
			parallel(n, clients, func(int) {
				e.docker("run", "-d", "--network", "none", "busybox:bench", "sleep", "100000")
			})
			for pid := range allPids() {
				if !before[pid] {
					added[e] = append(added[e], pid)
				}
			}
			daemonBefore[e] = daemon
		}
		time.Sleep(2 * time.Second)
		f := &figure{name: fmt.Sprintf("host memory per idle container (PSS, %d sleepers)", n),
			label: fmt.Sprintf("memory/container (%d)", n), unit: "MiB", ref: "docker", goal: below(2, "MiB")}
		f.tent, f.other = s.memorySamples(func(e *engine) float64 {
			kb := daemonPSS(e) - daemonBefore[e]
			for _, pid := range added[e] {
				kb += pssKB(pid)
			}
			return kb / 1024 / float64(n)
		})
		s.add(f)
		if n == last {
			f := &figure{name: fmt.Sprintf("daemon RSS with %d containers running", n), label: fmt.Sprintf("daemon RSS (%d)", n),
				unit: "MiB", ref: "docker"}
			f.tent, f.other = s.memorySamples(daemonRSS)
			s.add(f)
		}
		for _, e := range s.engines() {
			e.removeAll()
		}
	}
}

func daemonPSS(e *engine) float64 {
	var kb float64
	for _, pid := range e.daemonPids() {
		kb += pssKB(pid)
	}
	return kb
}

// psFigure: `ps -a` with many (created, not started) containers.
func (s *suite) psFigure() {
	for _, e := range s.engines() {
		parallel(s.psN, clients, func(int) { e.docker("create", "--network", "none", "busybox:bench", "true") })
	}
	f := &figure{name: fmt.Sprintf("`ps -a` with %d containers", s.psN), label: fmt.Sprintf("ps -a (%d)", s.psN),
		unit: "ms", ref: "docker"}
	ps := func(e *engine) func() float64 { return func() float64 { return ms(e.timed("ps", "-a")) } }
	f.tent, f.other = interleave(s.runs, s.warmup, ps(s.tent), ps(s.docker))
	s.add(f)
	for _, e := range s.engines() {
		e.removeAll()
	}
}

// imageFigures: load, save, push and pull of the generated multi-layer
// image; each push goes to an emptied registry.
func (s *suite) imageFigures() {
	mb := float64(s.image.bytes) / 1e6
	fig := func(verb string, g goal) *figure {
		return &figure{name: fmt.Sprintf("`%s` of a %.0f MB image (%d layers)", verb, mb, s.image.layers),
			label: verb + " time", unit: "s", ref: "docker", per: mb, perFmt: "%.0f MB/s", goal: g}
	}
	load, save, push, pull := fig("load", goal{}), fig("save", goal{}), fig("push", atMostRatio(0.5)), fig("pull", atMostRatio(0.5))
	remote := s.reg.addr + "/big:bench"
	for i := 0; i < s.heavyRuns; i++ {
		order := s.engines()
		if i%2 == 1 {
			order = []*engine{s.docker, s.tent}
		}
		for _, e := range order {
			e.try("rmi", "-f", s.image.tag, remote)
			samples := map[*figure]float64{}
			samples[load] = e.timed("load", "-q", "-i", s.image.path).Seconds()
			saved := filepath.Join(s.work, "saved.tar")
			samples[save] = e.timed("save", "-o", saved, s.image.tag).Seconds()
			os.Remove(saved)
			s.reg.reset()
			e.docker("tag", s.image.tag, remote)
			samples[push] = e.timed("push", "-q", remote).Seconds()
			e.docker("rmi", s.image.tag, remote)
			samples[pull] = e.timed("pull", "-q", remote).Seconds()
			if id := strings.TrimSpace(e.docker("image", "inspect", "-f", "{{.Id}}", remote)); id != s.image.id {
				fail(fmt.Errorf("%s pulled image %s, want %s", e.name, id, s.image.id))
			}
			for f, v := range samples {
				if e == s.tent {
					f.tent = append(f.tent, v)
				} else {
					f.other = append(f.other, v)
				}
			}
		}
	}
	for _, f := range []*figure{load, save, push, pull} {
		s.add(f)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// settle waits until the machine is quiet: at most a tenth of its CPU time
// busy over 50 ms (or a second passed: a host that is never that quiet
// only loses time). On two CPUs the work an engine does
// after a command returns (dockerd and containerd tearing a container
// down, the kernel its namespaces; tent's daemon starting its next spare)
// would otherwise land in the next sample, often the other engine's.
func settle() {
	busy, total := cpuTimes()
	for deadline := time.Now().Add(time.Second); time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		b, t := cpuTimes()
		if t > total && (b-busy)*10 <= t-total {
			return
		}
		busy, total = b, t
	}
}

// cpuTimes reads the machine's busy and total CPU time (clock ticks) from
// /proc/stat.
func cpuTimes() (busy, total uint64) {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(data), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}
