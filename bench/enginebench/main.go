// Command enginebench compares tent's engine with docker's on this machine,
// in one run: `run --rm busybox true` latency (both driven by the same
// docker CLI, interleaved), host memory per idle container, and the
// daemons' idle memory. It starts both engines in temporary directories
// and appends a Markdown section to the report.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/cgroups"
)

type engine struct {
	name         string
	host         string
	cmd          *exec.Cmd
	dir          string
	cgroupParent string
}

func main() {
	tent := flag.String("tent", "bin/tent", "tent binary")
	n := flag.Int("n", 30, "measured runs per engine")
	idle := flag.Int("idle", 20, "idle containers for the memory figure")
	out := flag.String("out", "", "append the Markdown section to this file")
	flag.Parse()
	tentBin, _ := filepath.Abs(*tent)
	if _, err := exec.LookPath("dockerd"); err != nil {
		fail("dockerd is not installed (apt-get install docker.io)")
	}
	tarball := busyboxTar()
	defer os.Remove(tarball)

	engines := []*engine{
		start("tent", "/tent-bench", tentBin, "daemon"),
		start("docker", "/docker-bench", "dockerd", "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip6tables=false"),
	}
	defer func() {
		for _, e := range engines {
			e.stop()
		}
	}()
	for _, e := range engines {
		e.docker("import", "--change", `CMD ["sh"]`, tarball, "busybox:bench")
	}
	// Idle daemon memory, before any container ran.
	idleRSS := map[string]float64{}
	for _, e := range engines {
		idleRSS[e.name] = daemonRSS(e)
	}
	// run --rm latency, interleaved after warm-up.
	lat := map[string][]time.Duration{}
	for i := 0; i < *n+3; i++ {
		for _, e := range engines {
			t0 := time.Now()
			e.docker("run", "--rm", "--network", "none", "busybox:bench", "true")
			if i >= 3 {
				lat[e.name] = append(lat[e.name], time.Since(t0))
			}
		}
	}
	// Host memory per idle container: the proportional set size of every
	// process the engine added (container, monitor or shim).
	perIdle := map[string]float64{}
	for _, e := range engines {
		before := pids()
		for i := 0; i < *idle; i++ {
			e.docker("run", "-d", "--network", "none", "busybox:bench", "sleep", "100000")
		}
		time.Sleep(2 * time.Second)
		var kb float64
		for pid := range pids() {
			if !before[pid] {
				kb += pss(pid)
			}
		}
		perIdle[e.name] = kb / 1024 / float64(*idle)
		ids := strings.Fields(e.docker("ps", "-aq"))
		e.docker(append([]string{"rm", "-f"}, ids...)...)
	}
	report := render(lat, perIdle, idleRSS, *n, *idle)
	fmt.Print(report)
	if *out != "" {
		f, err := os.OpenFile(*out, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fail(err.Error())
		}
		defer f.Close()
		f.WriteString("\n" + report)
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "enginebench:", msg)
	os.Exit(1)
}

func start(name, cgroupParent, bin string, args ...string) *engine {
	dir, err := os.MkdirTemp("/tmp", "enginebench-"+name+"-")
	if err != nil {
		fail(err.Error())
	}
	e := &engine{name: name, dir: dir, host: "unix://" + filepath.Join(dir, "sock"), cgroupParent: cgroupParent}
	args = append(args, "--cgroup-parent", cgroupParent, "--data-root", filepath.Join(dir, "data"), "--exec-root", filepath.Join(dir, "exec"), "-H", e.host)
	if name == "docker" {
		args = append(args, "--pidfile", filepath.Join(dir, "pid"))
	}
	e.cmd = exec.Command(bin, args...)
	logf, _ := os.Create(filepath.Join(dir, "daemon.log"))
	e.cmd.Stdout, e.cmd.Stderr = logf, logf
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		fail(err.Error())
	}
	for i := 0; ; i++ {
		if exec.Command("docker", "-H", e.host, "version").Run() == nil {
			return e
		}
		if i > 300 {
			fail(name + " did not start; see " + logf.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *engine) docker(args ...string) string {
	out, err := exec.Command("docker", append([]string{"-H", e.host}, args...)...).CombinedOutput()
	if err != nil {
		fail(fmt.Sprintf("%s: docker %v: %v: %s", e.name, args, err, out))
	}
	return string(out)
}

func (e *engine) stop() {
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	exec.Command("umount", "-R", e.dir).Run()
	os.RemoveAll(e.dir)
	if cg, err := cgroups.New(e.cgroupParent); err == nil {
		if err := cg.Destroy(); err != nil {
			fmt.Fprintf(os.Stderr, "enginebench: cgroup %s left: %v\n", e.cgroupParent, err)
		}
	}
	// dockerd also makes it in a hybrid host's unified hierarchy.
	os.Remove(filepath.Join("/sys/fs/cgroup/unified", e.cgroupParent))
}

// daemonRSS is the resident memory (MiB) of the engine's daemons: tent
// daemon, or dockerd plus the containerd it started.
func daemonRSS(e *engine) float64 {
	kb := rss(e.cmd.Process.Pid)
	if e.name == "docker" {
		for pid := range pids() {
			if ppid(pid) == e.cmd.Process.Pid && strings.HasPrefix(comm(pid), "containerd") {
				kb += rss(pid)
			}
		}
	}
	return kb / 1024
}

func pids() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out[pid] = true
		}
	}
	return out
}

func statusField(pid int, file, key string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), key+":"); ok {
			n, _ := strconv.ParseFloat(strings.Fields(v)[0], 64)
			return n
		}
	}
	return 0
}

func rss(pid int) float64 { return statusField(pid, "status", "VmRSS") }
func pss(pid int) float64 { return statusField(pid, "smaps_rollup", "Pss") }
func ppid(pid int) int    { return int(statusField(pid, "status", "PPid")) }
func comm(pid int) string {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return strings.TrimSpace(string(b))
}
func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func median(s []time.Duration) (med, p10, p90 time.Duration) {
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2], s[len(s)/10], s[len(s)*9/10]
}

func busyboxTar() string {
	dir, err := os.MkdirTemp("", "enginebench-rootfs-")
	if err != nil {
		fail(err.Error())
	}
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "bin"), 0o755)
	if out, err := exec.Command("cp", "/bin/busybox", filepath.Join(dir, "bin")).CombinedOutput(); err != nil {
		fail(fmt.Sprintf("busybox-static is needed: %v %s", err, out))
	}
	for _, a := range []string{"sh", "true", "sleep"} {
		os.Symlink("busybox", filepath.Join(dir, "bin", a))
	}
	tarball := filepath.Join(os.TempDir(), fmt.Sprintf("enginebench-%d.tar", os.Getpid()))
	if out, err := exec.Command("tar", "-C", dir, "-cf", tarball, ".").CombinedOutput(); err != nil {
		fail(fmt.Sprintf("tar: %v %s", err, out))
	}
	return tarball
}

func render(lat map[string][]time.Duration, perIdle, idleRSS map[string]float64, n, idle int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Engine benchmark: tent vs docker\n\nDate: %s. Made by `make bench` (bench/enginebench); both engines driven by the same docker CLI.\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	tm, t10, t90 := median(lat["tent"])
	dm, d10, d90 := median(lat["docker"])
	fmt.Fprintf(&b, "| figure | tent | docker | tent/docker | goal |\n|---|---|---|---|---|\n")
	goal := func(ok bool) string {
		if ok {
			return "met"
		}
		return "not met"
	}
	r := float64(tm) / float64(dm)
	fmt.Fprintf(&b, "| `run --rm busybox true`, median of %d (p10–p90) | %.1f ms (%.1f–%.1f) | %.1f ms (%.1f–%.1f) | **%.2f** | ≤ 0.10: %s |\n",
		n, ms(tm), ms(t10), ms(t90), ms(dm), ms(d10), ms(d90), r, goal(r <= 0.10))
	fmt.Fprintf(&b, "| host memory per idle container (PSS, %d sleepers) | %.2f MiB | %.2f MiB | **%.2f** | < 2 MiB: %s |\n",
		idle, perIdle["tent"], perIdle["docker"], perIdle["tent"]/perIdle["docker"], goal(perIdle["tent"] < 2))
	fmt.Fprintf(&b, "| daemon RSS, idle (docker: dockerd + containerd) | %.1f MiB | %.1f MiB | **%.2f** | < 40 MiB: %s |\n",
		idleRSS["tent"], idleRSS["docker"], idleRSS["tent"]/idleRSS["docker"], goal(idleRSS["tent"] < 40))
	return b.String()
}
