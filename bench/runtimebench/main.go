// Command runtimebench times the container lifecycle (create, start,
// delete) of tent-runtime and runc on the same busybox bundle, interleaved
// in one run, and writes the medians and their ratio as Markdown.
//
//	go run ./bench/runtimebench -tent bin/tent-runtime -n 50 -out bench/RESULTS.md
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/tent-project/tent/internal/oci"
)

type engine struct {
	name, bin, root string
	samples         []time.Duration
}

func main() {
	tent := flag.String("tent", "bin/tent-runtime", "tent-runtime binary")
	runc := flag.String("runc", "runc", "runc binary (skipped if absent)")
	n := flag.Int("n", 50, "measured iterations per runtime")
	warm := flag.Int("warmup", 5, "warm-up iterations per runtime")
	out := flag.String("out", "", "write the Markdown report here (default: stdout only)")
	flag.Parse()
	log.SetFlags(0)

	work, err := os.MkdirTemp("", "tent-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(work)
	bundle := filepath.Join(work, "bundle")
	if err := makeBundle(bundle); err != nil {
		log.Fatal(err)
	}

	engines := []*engine{{name: "tent-runtime", bin: mustAbs(*tent), root: filepath.Join(work, "tent")}}
	if p, err := exec.LookPath(*runc); err == nil {
		engines = append(engines, &engine{name: "runc", bin: p, root: filepath.Join(work, "runc")})
	} else {
		log.Printf("runc not found: measuring tent-runtime alone")
	}
	for i := 0; i < *warm; i++ {
		for _, e := range engines {
			if _, err := cycle(e, bundle, i); err != nil {
				log.Fatalf("%s: %v", e.name, err)
			}
		}
	}
	for i := 0; i < *n; i++ {
		// Alternate the order so neither runtime always runs second.
		order := engines
		if i%2 == 1 && len(engines) == 2 {
			order = []*engine{engines[1], engines[0]}
		}
		for _, e := range order {
			d, err := cycle(e, bundle, *warm+i)
			if err != nil {
				log.Fatalf("%s: %v", e.name, err)
			}
			e.samples = append(e.samples, d)
		}
	}
	report := render(engines, *n)
	fmt.Print(report)
	if *out != "" {
		if err := os.WriteFile(*out, []byte(report), 0o644); err != nil {
			log.Fatal(err)
		}
	}
}

func mustAbs(p string) string {
	a, err := filepath.Abs(p)
	if err != nil {
		log.Fatal(err)
	}
	return a
}

// cycle runs create, start and delete --force once and returns the time.
func cycle(e *engine, bundle string, i int) (time.Duration, error) {
	id := fmt.Sprintf("bench-%d", i)
	// A file, not a pipe: create hands its stdio to the container, and a
	// pipe would make us wait for the container to close it.
	out, err := os.CreateTemp("", "bench-out")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	start := time.Now()
	for _, args := range [][]string{
		{"create", "--bundle", bundle, id},
		{"start", id},
		{"delete", "--force", id},
	} {
		cmd := exec.Command(e.bin, append([]string{"--root", e.root}, args...)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			msg, _ := os.ReadFile(out.Name())
			return 0, fmt.Errorf("%v: %v: %s", args, err, msg)
		}
	}
	return time.Since(start), nil
}

func makeBundle(dir string) error {
	bin := filepath.Join(dir, "rootfs", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return err
	}
	for _, d := range []string{"proc", "sys", "dev", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, "rootfs", d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("need a static busybox (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, a := range []string{"sh", "true", "sleep"} {
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			return err
		}
	}
	s := oci.DefaultSpec(false)
	s.Process.Terminal = false
	s.Process.Args = []string{"true"}
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

func stats(s []time.Duration) (med, p10, p90 time.Duration) {
	c := append([]time.Duration(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	at := func(q float64) time.Duration { return c[int(q*float64(len(c)-1)+0.5)] }
	return at(0.5), at(0.1), at(0.9)
}

func version(bin string) string {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return "?"
	}
	return strings.SplitN(strings.TrimSpace(string(out)), "\n", 2)[0]
}

func render(engines []*engine, n int) string {
	var b strings.Builder
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	fmt.Fprintf(&b, "# Runtime benchmark\n\n")
	fmt.Fprintf(&b, "Date: %s. Machine: %d CPUs, kernel %s, %s. Made by `make bench` (bench/runtimebench).\n\n",
		time.Now().UTC().Format("2006-01-02 15:04 UTC"), runtime.NumCPU(), strings.TrimSpace(string(kernel)), runtime.Version())
	fmt.Fprintf(&b, "One cycle = `create` + `start` + `delete --force` of a busybox bundle running `true`, default spec\n")
	fmt.Fprintf(&b, "(namespaces, cgroup, seccomp profile), %d cycles per runtime, interleaved, after warm-up.\n\n", n)
	fmt.Fprintf(&b, "| runtime | version | median | p10 | p90 |\n|---|---|---|---|---|\n")
	for _, e := range engines {
		med, p10, p90 := stats(e.samples)
		fmt.Fprintf(&b, "| %s | %s | %.1f ms | %.1f ms | %.1f ms |\n", e.name, version(e.bin), ms(med), ms(p10), ms(p90))
	}
	if len(engines) == 2 {
		a, _, _ := stats(engines[0].samples)
		r, _, _ := stats(engines[1].samples)
		ratio := float64(a) / float64(r)
		verdict := "met"
		if ratio > 1 {
			verdict = "not met"
		}
		fmt.Fprintf(&b, "\nRatio tent-runtime / runc (medians): **%.2f** (goal: at most 1.00, %s).\n", ratio, verdict)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
