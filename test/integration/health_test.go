package integration

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
)

func health(t *testing.T, d *dockerEngine, name string) *container.Health {
	t.Helper()
	var h *container.Health
	out := d.must(t, "inspect", "-f", "{{json .State.Health}}", name)
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("State.Health %q: %v", out, err)
	}
	return h
}

// waitHealth waits until name's health is want and returns the statuses
// seen on the way.
func waitHealth(t *testing.T, d *dockerEngine, name string, want container.HealthStatus) []container.HealthStatus {
	t.Helper()
	var seen []container.HealthStatus
	deadline := time.Now().Add(20 * time.Second)
	for {
		h := health(t, d, name)
		if h != nil && (len(seen) == 0 || seen[len(seen)-1] != h.Status) {
			seen = append(seen, h.Status)
		}
		if h != nil && h.Status == want {
			return seen
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became %s (seen %v, last %+v)", name, want, seen, h)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestHealthChecks runs the same checks on dockerd and tent: a check that
// fails, then passes; one from the image; one that times out; none; the
// events, ps and its filter; and checks that go on across a restart of
// tent's daemon.
func TestHealthChecks(t *testing.T) {
	_, e, engines, images := startPair(t)
	since := time.Now().Add(-time.Second).Format(time.RFC3339Nano)
	for name, en := range engines {
		en.must(t, "run", "-d", "--name", "flips", "--network", "none", "--health-cmd", "test -f /ok", "--health-interval", "300ms",
			"--health-retries", "2", images[name], "sh", "-c", "sleep 2; touch /ok; exec sleep 1000")
		en.must(t, "run", "-d", "--name", "slow", "--network", "none", "--health-cmd", "sleep 5", "--health-timeout", "200ms",
			"--health-interval", "300ms", "--health-retries", "1", images[name], "sleep", "1000")
		en.must(t, "run", "-d", "--name", "plain", "--network", "none", images[name], "sleep", "1000")
	}
	for name, en := range engines {
		waitHealth(t, en, "flips", container.Healthy) // through unhealthy: the events below say

		waitHealth(t, en, "slow", container.Unhealthy)
		h := health(t, en, "slow")
		if last := h.Log[len(h.Log)-1]; last.ExitCode != -1 || last.Output != "Health check exceeded timeout (200ms)" {
			t.Errorf("%s: a probe that timed out: %+v", name, last)
		}
		if h := health(t, en, "plain"); h != nil {
			t.Errorf("%s: a container without a check has health %+v", name, h)
		}
	}
	t.Run("events, ps and its filter", func(t *testing.T) {
		until := time.Now().Format(time.RFC3339Nano)
		evs := map[string]string{}
		for name, en := range engines {
			evs[name] = en.must(t, "events", "--since", since, "--until", until, "--filter", "container=flips", "--filter", "event=health_status", "--format", "{{.Action}}")
			if ps := en.must(t, "ps", "--filter", "name=flips", "--format", "{{.Status}}"); !strings.HasSuffix(strings.TrimSpace(ps), "(healthy)") {
				t.Errorf("%s: ps status %q", name, ps)
			}
			for filter, want := range map[string]string{"healthy": "flips", "unhealthy": "slow", "none": "plain", "starting": ""} {
				if got := strings.TrimSpace(en.must(t, "ps", "--filter", "health="+filter, "--format", "{{.Names}}")); got != want {
					t.Errorf("%s: ps --filter health=%s: %q, want %s", name, filter, got, want)
				}
			}
		}
		if evs["tent"] != evs["docker"] || evs["tent"] != "health_status: unhealthy\nhealth_status: healthy\n" {
			t.Errorf("health_status events:\ntent   %q\ndocker %q", evs["tent"], evs["docker"])
		}
		if out, code := e.run("ps", "--filter", "health=sick"); code == 0 || !strings.Contains(out, "Unrecognised filter value for health: sick") {
			t.Errorf("a bad health filter: %d %s", code, out)
		}
		if h := health(t, &e.dockerEngine, "flips"); len(h.Log) > 5 {
			t.Errorf("the log keeps %d results, want the last 5", len(h.Log))
		}
	})

	t.Run("from the image, and --no-healthcheck", func(t *testing.T) {
		ctx := t.TempDir()
		os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox\nHEALTHCHECK --interval=300ms CMD [\"true\"]\n"), 0o644)
		if out, errOut, code := e.build("-t", "checked", ctx); code != 0 {
			t.Fatalf("build: %s %s", out, errOut)
		}
		e.must(t, "run", "-d", "--name", "imaged", "--network", "none", "checked", "sleep", "1000")
		e.must(t, "run", "-d", "--name", "unchecked", "--network", "none", "--no-healthcheck", "checked", "sleep", "1000")
		waitHealth(t, &e.dockerEngine, "imaged", container.Healthy)
		if h := health(t, &e.dockerEngine, "unchecked"); h != nil {
			t.Errorf("--no-healthcheck: %+v", h)
		}
	})

	t.Run("across a daemon restart", func(t *testing.T) {
		before := health(t, &e.dockerEngine, "flips")
		e.stop()
		e.start()
		restarted := time.Now()
		deadline := time.Now().Add(10 * time.Second)
		for {
			h := health(t, &e.dockerEngine, "flips")
			if h.Status != container.Healthy || h.FailingStreak != 0 {
				t.Fatalf("after the restart: %+v (before %+v)", h, before)
			}
			if last := h.Log[len(h.Log)-1]; last.Start.After(restarted) {
				break // probed again
			}
			if time.Now().After(deadline) {
				t.Fatal("no probe after the daemon's restart")
			}
			time.Sleep(100 * time.Millisecond)
		}
		out, _, _ := capture(t, exec.Command(tentBin(), "-H", e.host, "ps", "--filter", "name=flips"), nil)
		if !strings.Contains(out, "(healthy)") {
			t.Errorf("tent ps: %s", out)
		}
	})
}
