// Package health runs docker's health checks: the check's test is exec'd
// in the running container every interval (every start interval during
// the start period), a probe that outlasts its timeout is killed, and the
// status goes from "starting" to "healthy" at the first success and to
// "unhealthy" after retries failures in a row (failures within the start
// period do not count while the container has never been healthy). The
// last five results are kept in State.Health. The daemon drives the
// checks of each run and keeps the record (so that a restarted daemon
// goes on where it was); this package holds the rules.
package health

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/task"
)

// dockerd's defaults and limits.
const (
	defaultInterval      = 30 * time.Second
	defaultTimeout       = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultRetries       = 3
	maxLog               = 5
	maxOutput            = 4096
)

// Merge is the container's check: the user's fields over the image's, as
// dockerd merges them at create.
func Merge(user *container.HealthConfig, image *dockerspec.HealthcheckConfig) *container.HealthConfig {
	if image == nil {
		return user
	}
	h := container.HealthConfig{Test: image.Test, Interval: image.Interval, Timeout: image.Timeout,
		StartPeriod: image.StartPeriod, StartInterval: image.StartInterval, Retries: image.Retries}
	if user == nil {
		return &h
	}
	if len(user.Test) > 0 {
		h.Test = user.Test
	}
	for _, f := range []struct{ dst, src *time.Duration }{{&h.Interval, &user.Interval}, {&h.Timeout, &user.Timeout},
		{&h.StartPeriod, &user.StartPeriod}, {&h.StartInterval, &user.StartInterval}} {
		if *f.src != 0 {
			*f.dst = *f.src
		}
	}
	if user.Retries != 0 {
		h.Retries = user.Retries
	}
	return &h
}

// Command is what a container's check runs, nil for none.
func Command(cfg *container.Config) []string {
	h := cfg.Healthcheck
	if h == nil || len(h.Test) == 0 {
		return nil
	}
	switch h.Test[0] {
	case "CMD":
		return h.Test[1:]
	case "CMD-SHELL":
		shell := cfg.Shell
		if len(shell) == 0 {
			shell = []string{"/bin/sh", "-c"}
		}
		return append(append([]string(nil), shell...), h.Test[1:]...)
	}
	return nil // NONE, or a form dockerd does not run either
}

func orDuration(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// Starting is the health of a run whose checks begin.
func Starting() *container.Health {
	return &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
}

// Wait is the time until the next probe of a run that started at
// startedAt: the start interval while it starts within its start period.
func Wait(cfg *container.HealthConfig, h *container.Health, startedAt time.Time) time.Duration {
	if h != nil && h.Status == container.Starting && time.Since(startedAt) < cfg.StartPeriod {
		return orDuration(cfg.StartInterval, defaultStartInterval)
	}
	return orDuration(cfg.Interval, defaultInterval)
}

// Timeout is how long a probe may run.
func Timeout(cfg *container.HealthConfig) time.Duration {
	return orDuration(cfg.Timeout, defaultTimeout)
}

// Record takes a probe's result into h and says whether the status
// changed.
func Record(cfg *container.HealthConfig, h *container.Health, startedAt time.Time, res *container.HealthcheckResult) bool {
	before := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > maxLog {
		h.Log = h.Log[len(h.Log)-maxLog:]
	}
	retries := cfg.Retries
	if retries <= 0 {
		retries = defaultRetries
	}
	if res.ExitCode == 0 {
		h.FailingStreak, h.Status = 0, container.Healthy
	} else if h.Status != container.Starting || res.Start.Sub(startedAt) >= cfg.StartPeriod {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	return h.Status != before
}

// Probe runs proc once in t as the exec id, killed after timeout; its
// result keeps the first 4 KiB of its output.
func Probe(ctx context.Context, t task.Task, id string, proc *specs.Process, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now().UTC(), ExitCode: -1}
	defer func() { res.End = time.Now().UTC() }()
	stream, err := t.Exec(ctx, id, proc, task.ExecOpts{Ephemeral: true})
	if err != nil {
		res.Output = err.Error()
		return res
	}
	defer stream.Close()
	var out limitedBuffer
	read := make(chan struct{})
	go func() {
		streams.Demux(&out, &out, stream)
		close(read)
	}()
	select {
	case <-read:
	case <-time.After(timeout):
		syscall.Kill(stream.Pid(), syscall.SIGKILL)
		t.ExecWait(ctx, id)
		res.Output = fmt.Sprintf("Health check exceeded timeout (%v)", timeout)
		return res
	}
	st, err := t.ExecWait(ctx, id)
	if err != nil {
		res.Output = err.Error()
		return res
	}
	res.ExitCode, res.Output = st.ExitCode, out.String()
	return res
}

// Suffix is what ps adds to a running container's status.
func Suffix(h *container.Health) string {
	if h == nil {
		return ""
	}
	if h.Status == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(h.Status) + ")"
}

// limitedBuffer keeps the first maxOutput bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
