package main

import (
	"fmt"
	"image/color"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
)

func (s *suite) report(mode string, took time.Duration) string {
	var b strings.Builder
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	cgroup := "v1 (hybrid)"
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroup = "v2"
	}
	fmt.Fprintf(&b, "# Benchmarks: tent against docker and runc\n\n")
	fmt.Fprintf(&b, "Made by `make bench%s` (bench/) on %s in %s.\n\n", map[string]string{"quick": "-quick"}[mode],
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), took.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %d CPUs, %.0f GiB memory, kernel %s, cgroup %s.\n", runtime.NumCPU(),
		procField("/proc/meminfo", "MemTotal")/(1<<20), strings.TrimSpace(string(kernel)), cgroup)
	fmt.Fprintf(&b, "- %s (%s); dockerd: %s, with %s; client: %s; %s; %s.\n\n",
		firstLine(s.binDir+"/tent", "--version"), runtime.Version(), firstLine("dockerd", "--version"),
		containerdVersion(), firstLine("docker", "--version"),
		firstLine("runc", "--version"), firstLine("docker-registry", "--version"))
	fmt.Fprintf(&b, "Every figure is a cost (time or memory), so a ratio below 1 means tent is cheaper, but for throughput and capacity (Gbit/s, containers), where above 1 means tent does more. ")
	fmt.Fprintf(&b, "Medians, with the 10th–90th percentile range where there are several samples.\n\n")
	fmt.Fprintf(&b, "| figure | tent | reference | tent / reference | goal |\n|---|---|---|---|---|\n")
	for _, f := range s.figures {
		fmt.Fprintf(&b, "| %s | %s | %s: %s | **%.2f** | %s |\n", f.name, f.cell(f.tent), f.ref, f.cell(f.other), f.ratio(), f.verdict())
	}
	fmt.Fprintf(&b, "\n![tent / reference ratios](ratios.png)\n\n")
	fmt.Fprintf(&b, "## How it was measured\n\n")
	for _, line := range []string{
		"Both engines run side by side in one session, started by the benchmark in temporary directories, " +
			"each on a default bridge of its own (tent on tb-tent; dockerd with `-b tb-docker`, iptables off, so published ports go " +
			"through its userland proxy), and are driven by the same docker CLI. Figures other than the network ones run " +
			"`--network none` on both (equal work); the network figures use each engine's default bridge, or one user network: " +
			"the figures include the client's own start-up (~40 ms for the docker CLI here).",
		fmt.Sprintf("Latency figures: %d sample(s) per engine after %d warm-up run(s), alternating which engine goes first. "+
			"The runtime figure takes %d samples of each runtime on the same bundle. Every sample starts on a quiet machine "+
			"(at most a tenth of the CPU time busy over 50 ms, or a second passed), so that neither engine pays for the other's "+
			"background work (containerd's teardown, tent's next spare). TCP throughput: %d samples of 3 s per engine.",
			s.runs, s.warmup, s.runs*3, s.heavyRuns*3),
		fmt.Sprintf("Batch and image figures: %d sample(s) per engine, alternating order. Each push goes to an emptied "+
			"local registry (docker-registry on 127.0.0.1), and each pull starts with the image removed.", s.heavyRuns),
		"Memory figures are levels, read three times half a second apart. Host memory per idle container is the " +
			"proportional set size of every process the engine added for its sleepers (container, monitor or shim) " +
			"plus what its daemons grew by, divided by the number of sleepers; docker's daemons are dockerd and containerd.",
		fmt.Sprintf("The image is generated: %d layers, %.0f MB of files, half random and half text (about 2:1 under gzip), "+
			"the same bytes and image ID in both engines (checked after each pull).", s.image.layers, float64(s.image.bytes)/1e6),
		"Builds go through the docker CLI's legacy builder protocol (DOCKER_BUILDKIT=0) for both engines, RUN steps " +
			"without a network; `stats --no-stream` and `cp` run through the docker CLI for both.",
	} {
		fmt.Fprintf(&b, "- %s\n", line)
	}
	return b.String()
}

// cell formats a side's samples: median, spread and, for batch and
// throughput figures, the rate.
func (f *figure) cell(samples []float64) string {
	med, p10, p90 := summary(samples)
	num, ok := map[string]string{"ms": "%.1f", "s": "%.2f", "MiB": "%.2f", "Gbit/s": "%.2f", "containers": "%.0f"}[f.unit]
	if !ok {
		num = "%g"
	}
	out := fmt.Sprintf(num+" "+f.unit, med)
	if p10 != p90 {
		out += fmt.Sprintf(" ("+num+"–"+num+")", p10, p90)
	}
	if f.per > 0 {
		out += ", " + fmt.Sprintf(f.perFmt, f.per/med)
	}
	return out
}

func (f *figure) verdict() string {
	if f.goal.met == nil {
		return "—"
	}
	t, _, _ := summary(f.tent)
	if f.goal.met(t, f.ratio()) {
		return f.goal.text + ": met"
	}
	return f.goal.text + ": **not met**"
}

// containerdVersion shortens "containerd github.com/containerd/containerd
// 1.6.20~ds1 <revision>" to "containerd 1.6.20~ds1".
func containerdVersion() string {
	if f := strings.Fields(firstLine("containerd", "--version")); len(f) >= 3 {
		return "containerd " + f[2]
	}
	return "containerd ?"
}

func firstLine(name string, args ...string) string {
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		return name + " ?"
	}
	return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
}

// chart draws the tent/reference ratio of every figure as a horizontal
// bar, with parity (1.0) marked.
func chart(figures []*figure, path string) error {
	p := plot.New()
	p.Title.Text = "tent / reference (lower is better)"
	p.X.Label.Text = "ratio of medians"
	var ratios plotter.Values
	var labels []string
	// The first figure at the top: NominalY counts from the bottom.
	for i := len(figures) - 1; i >= 0; i-- {
		ratios = append(ratios, figures[i].ratio())
		labels = append(labels, figures[i].label+" vs "+figures[i].ref)
	}
	bars, err := plotter.NewBarChart(ratios, vg.Points(14))
	if err != nil {
		return err
	}
	bars.Horizontal = true
	bars.Color = color.RGBA{R: 0x2b, G: 0x6c, B: 0xb0, A: 0xff}
	bars.LineStyle.Width = 0
	p.Add(bars)
	var pts plotter.XYs
	var texts []string
	for i, r := range ratios {
		pts = append(pts, plotter.XY{X: r, Y: float64(i)})
		texts = append(texts, fmt.Sprintf(" %.2f", r))
	}
	values, err := plotter.NewLabels(plotter.XYLabels{XYs: pts, Labels: texts})
	if err != nil {
		return err
	}
	for i := range values.TextStyle {
		values.TextStyle[i].YAlign = -0.5
	}
	p.Add(values)
	parity, err := plotter.NewLine(plotter.XYs{{X: 1, Y: -0.5}, {X: 1, Y: float64(len(ratios)) - 0.5}})
	if err != nil {
		return err
	}
	parity.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
	parity.Color = color.RGBA{R: 0xc0, A: 0xff}
	p.Add(parity)
	p.NominalY(labels...)
	p.X.Min = 0
	p.X.Max = max(p.X.Max*1.15, 1.1)
	return p.Save(9*vg.Inch, vg.Length(len(ratios))*0.4*vg.Inch+1.2*vg.Inch, path)
}
