package integration

import (
	"encoding/json"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

// TestStats holds docker stats against tent to dockerd's output for the
// same containers: the table's header, the memory limit, a CPU burner
// held to half a CPU, memory a container fills, its PIDs; and the API's
// stream, one-shot and refusals.
func TestStats(t *testing.T) {
	d, e, engines, images := startPair(t)
	for name, en := range engines {
		en.must(t, "run", "-d", "--name", "burner", "--network", "none", "--cpus", "0.5", images[name], "sh", "-c", "while :; do :; done")
		en.must(t, "run", "-d", "--name", "filler", "--network", "none", "--memory", "96m", images[name], "sh", "-c",
			"dd if=/dev/zero of=/dev/shm/fill bs=1M count=40 2>/dev/null; exec sleep 1000")
		en.must(t, "create", "--name", "idle", "--network", "none", images[name], "true")
	}
	time.Sleep(1500 * time.Millisecond) // the burner at its quota, the filler full

	const f = "{{.Name}}|{{.CPUPerc}}|{{.MemUsage}}|{{.MemPerc}}|{{.NetIO}}|{{.BlockIO}}|{{.PIDs}}"
	rows := map[string]map[string][]string{}
	for name, en := range engines {
		out := en.must(t, "stats", "--no-stream", "--format", f, "burner", "filler", "idle")
		rows[name] = map[string][]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			cols := strings.Split(line, "|")
			rows[name][cols[0]] = cols
		}
	}
	t.Logf("docker: %q\ntent:   %q", rows["docker"], rows["tent"])
	percent := func(s string) float64 {
		v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
		if err != nil {
			t.Fatalf("percentage %q: %v", s, err)
		}
		return v
	}
	for name, r := range rows {
		if c := percent(r["burner"][1]); c < 30 || c > 70 {
			t.Errorf("%s: a burner held to 0.5 CPUs shows %s", name, r["burner"][1])
		}
		if limit := strings.Split(r["filler"][2], " / ")[1]; limit != "96MiB" {
			t.Errorf("%s: the filler's limit is %q, want 96MiB", name, limit)
		}
		if m := percent(r["filler"][3]); m < 40 || m > 60 {
			t.Errorf("%s: 40 MiB in a 96 MiB container is %s", name, r["filler"][3])
		}
		if r["filler"][6] != "1" || r["burner"][6] != "1" {
			t.Errorf("%s: pids %s, %s; want 1 each", name, r["filler"][6], r["burner"][6])
		}
		if r["filler"][4] != "0B / 0B" {
			t.Errorf("%s: net I/O without a network %q", name, r["filler"][4])
		}
	}
	// A stopped container's row is docker's row of zeros; the burner's
	// unlimited memory is the machine's in both.
	if got, want := strings.Join(rows["tent"]["idle"][1:], "|"), strings.Join(rows["docker"]["idle"][1:], "|"); got != want {
		t.Errorf("a created container's row: tent %q, docker %q", got, want)
	}
	if got, want := strings.Split(rows["tent"]["burner"][2], " / ")[1], strings.Split(rows["docker"]["burner"][2], " / ")[1]; got != want {
		t.Errorf("an unlimited container's limit: tent %s, docker %s", got, want)
	}

	t.Run("table header", func(t *testing.T) {
		head := func(en *dockerEngine) string {
			return strings.Join(strings.Fields(strings.SplitN(en.must(t, "stats", "--no-stream", "idle"), "\n", 2)[0]), " ")
		}
		if got, want := head(&e.dockerEngine), head(d); got != want {
			t.Errorf("header: tent %q, docker %q", got, want)
		}
	})

	t.Run("API", func(t *testing.T) {
		get := func(q string) (*container.StatsResponse, int) {
			resp, err := e.http().Get("http://tent/containers/burner/stats?" + q)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var s container.StatsResponse
			if resp.StatusCode == 200 {
				if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
					t.Fatal(err)
				}
			}
			return &s, resp.StatusCode
		}
		s, code := get("stream=false")
		if code != 200 || s.Read.IsZero() || s.PreRead.IsZero() || !s.Read.After(s.PreRead) || s.CPUStats.SystemUsage == 0 ||
			s.CPUStats.OnlineCPUs == 0 || s.PreCPUStats.CPUUsage.TotalUsage == 0 || s.MemoryStats.Limit == 0 || s.PidsStats.Current != 1 || s.Name != "/burner" {
			t.Errorf("stream=false: %d %+v", code, s)
		}
		if s, _ := get("stream=false&one-shot=true"); !s.PreRead.IsZero() || s.PreCPUStats.CPUUsage.TotalUsage != 0 || s.CPUStats.CPUUsage.TotalUsage == 0 {
			t.Errorf("one-shot: %+v", s)
		}
		if _, code := get("stream=true&one-shot=true"); code != 400 {
			t.Errorf("stream and one-shot: %d, want 400", code)
		}
		// The stream: a sample a second, each with the last as precpu.
		resp, err := e.http().Get("http://tent/containers/burner/stats")
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(resp.Body)
		var samples []container.StatsResponse
		for len(samples) < 3 {
			var s container.StatsResponse
			if err := dec.Decode(&s); err != nil {
				t.Fatal(err)
			}
			samples = append(samples, s)
		}
		resp.Body.Close()
		for i := 1; i < 3; i++ {
			gap := samples[i].Read.Sub(samples[i-1].Read)
			if gap < 800*time.Millisecond || gap > 2*time.Second || !samples[i].PreRead.Equal(samples[i-1].Read) {
				t.Errorf("sample %d: %v after the last, preread %v (last read %v)", i, gap, samples[i].PreRead, samples[i-1].Read)
			}
		}
		if _, code := func() (any, int) {
			resp, err := e.http().Get("http://tent/containers/nosuch/stats?stream=false")
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return nil, resp.StatusCode
		}(); code != 404 {
			t.Errorf("stats of a missing container: %d", code)
		}
	})

	t.Run("errors and the tent CLI", func(t *testing.T) {
		for name, en := range engines {
			if out, code := en.run("stats", "--no-stream", "nosuch"); code == 0 || !strings.Contains(out, "No such container") {
				t.Errorf("%s: stats of a missing container: %d %s", name, code, out)
			}
		}
		out, errOut, code := capture(t, exec.Command(tentBin(), "-H", e.host, "stats", "--no-stream"), nil)
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "CONTAINER ID") {
			t.Errorf("tent stats --no-stream (the two running): %d %q %s", code, out, errOut)
		}
		out, _, _ = capture(t, exec.Command(tentBin(), "-H", e.host, "stats", "--no-stream", "-a", "--format", "{{.Name}}"), nil)
		if got := strings.Fields(out); len(got) != 3 {
			t.Errorf("tent stats -a: %q", got)
		}
	})
}
