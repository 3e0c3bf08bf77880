package health

import (
	"strings"
	"testing"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
)

func TestMergeAndCommand(t *testing.T) {
	image := &dockerspec.HealthcheckConfig{Test: []string{"CMD-SHELL", "true"}, Interval: time.Minute, Retries: 2}
	h := Merge(&container.HealthConfig{Timeout: time.Second}, image)
	if strings.Join(h.Test, " ") != "CMD-SHELL true" || h.Interval != time.Minute || h.Timeout != time.Second || h.Retries != 2 {
		t.Errorf("merged: %+v", h)
	}
	if got := Command(&container.Config{Healthcheck: h, Shell: []string{"/bin/ash", "-e", "-c"}}); strings.Join(got, " ") != "/bin/ash -e -c true" {
		t.Errorf("CMD-SHELL with the image's shell: %q", got)
	}
	if got := Command(&container.Config{Healthcheck: &container.HealthConfig{Test: []string{"CMD", "probe", "-v"}}}); strings.Join(got, " ") != "probe -v" {
		t.Errorf("CMD: %q", got)
	}
	if Command(&container.Config{Healthcheck: &container.HealthConfig{Test: []string{"NONE"}}}) != nil || Command(&container.Config{}) != nil {
		t.Error("NONE or no check runs something")
	}
	if Merge(nil, nil) != nil {
		t.Error("no check at all became one")
	}
}

// TestRecord: the first success makes it healthy; failures count after
// the start period (or once it was healthy), and retries of them in a
// row make it unhealthy; five results are kept.
func TestRecord(t *testing.T) {
	cfg := &container.HealthConfig{StartPeriod: time.Minute, Retries: 2}
	started := time.Now()
	h := Starting()
	fail := func(at time.Time) *container.HealthcheckResult {
		return &container.HealthcheckResult{Start: at, ExitCode: 1}
	}
	if Record(cfg, h, started, fail(started.Add(time.Second))) || h.FailingStreak != 0 || h.Status != container.Starting {
		t.Errorf("a failure in the start period counted: %+v", h)
	}
	if !Record(cfg, h, started, &container.HealthcheckResult{Start: started.Add(2 * time.Second)}) || h.Status != container.Healthy {
		t.Errorf("a success: %+v", h)
	}
	Record(cfg, h, started, fail(started.Add(3*time.Second)))
	if h.Status != container.Healthy || h.FailingStreak != 1 {
		t.Errorf("one failure of two: %+v", h)
	}
	if !Record(cfg, h, started, fail(started.Add(4*time.Second))) || h.Status != container.Unhealthy {
		t.Errorf("two failures in a row: %+v", h)
	}
	Record(cfg, h, started, fail(started.Add(5*time.Second)))
	Record(cfg, h, started, fail(started.Add(6*time.Second)))
	if len(h.Log) != 5 || !h.Log[4].Start.Equal(started.Add(6*time.Second)) {
		t.Errorf("log: %d results", len(h.Log))
	}
	if Suffix(h) != " (unhealthy)" || Suffix(Starting()) != " (health: starting)" || Suffix(nil) != "" {
		t.Errorf("suffixes: %q", Suffix(h))
	}
}

func TestWaitAndTimeout(t *testing.T) {
	cfg := &container.HealthConfig{StartPeriod: time.Minute, StartInterval: time.Second}
	if w := Wait(cfg, Starting(), time.Now()); w != time.Second {
		t.Errorf("in the start period: %v", w)
	}
	if w := Wait(cfg, Starting(), time.Now().Add(-2*time.Minute)); w != defaultInterval {
		t.Errorf("after it: %v", w)
	}
	if Timeout(cfg) != defaultTimeout || Timeout(&container.HealthConfig{Timeout: time.Second}) != time.Second {
		t.Error("timeouts")
	}
	var b limitedBuffer
	b.Write(make([]byte, 3000))
	if n, _ := b.Write(make([]byte, 3000)); n != 3000 || b.Len() != maxOutput {
		t.Errorf("limited buffer: %d kept", b.Len())
	}
}
