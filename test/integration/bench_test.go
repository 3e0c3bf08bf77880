package integration

import (
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/testutil"
)

// TestBenchQuick checks that the benchmark harness (bench/, make
// bench-quick) runs and writes its report and chart, and that it leaves
// nothing behind. It checks no figure: benchmarks are reports, never
// assertions.
func TestBenchQuick(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, bin := range []string{"dockerd", "docker", "docker-registry", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("%s not installed (./scripts/deps.sh installs it)", bin)
		}
	}
	out := t.TempDir()
	cmd := exec.Command("go", "run", "./bench", "-bin", binDir, "-quick", "-out", out)
	cmd.Dir = "../.."
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bench -quick: %v\n%s", err, b)
	}
	report, err := os.ReadFile(filepath.Join(out, "RESULTS.md"))
	if err != nil {
		t.Fatal(err)
	}
	// Every figure is a table row ending in a ratio and a goal column.
	row := regexp.MustCompile(`(?m)^\| (.+) \| .+ \| (docker|runc): .+ \| \*\*-?[0-9]+\.[0-9]{2}\*\* \| .+ \|$`)
	rows := row.FindAllStringSubmatch(string(report), -1)
	for _, want := range []string{"create + start + delete", "daemon RSS, idle", "run --rm busybox true", "`run -d` of",
		"host memory per idle container", "daemon RSS with", "`ps -a` with", "`load` of", "`save` of", "`push` of", "`pull` of",
		"on the default bridge", "network's share", "TCP throughput", "containers on one user network"} {
		found := false
		for _, r := range rows {
			found = found || strings.Contains(r[1], want)
		}
		if !found {
			t.Errorf("report has no %q row:\n%s", want, report)
		}
	}
	f, err := os.Open(filepath.Join(out, "ratios.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("ratios.png: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 200 || b.Dy() < 200 {
		t.Errorf("ratios.png is %v", b)
	}
	// Nothing left: the engines' cgroups and temporary directories.
	for _, leftover := range []string{"/sys/fs/cgroup/memory/tent-bench", "/sys/fs/cgroup/memory/docker-bench", "/sys/fs/cgroup/unified/docker-bench"} {
		if _, err := os.Stat(leftover); err == nil {
			t.Errorf("%s left behind", leftover)
		}
	}
	// The bench's own temporary directories and files (engines, registry,
	// work, command output), not whatever else is named bench-.
	for _, pattern := range []string{"/tmp/bench-tent-*", "/tmp/bench-docker-*", "/tmp/bench-registry-*", "/tmp/bench-work-*", "/tmp/bench-out*"} {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			t.Errorf("left behind: %v", m)
		}
	}
}
