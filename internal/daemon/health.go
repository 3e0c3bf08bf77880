package daemon

import (
	"bytes"
	"context"
	"fmt"
	"syscall"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/task"
)

// Health checks, as dockerd runs them: the check's test is exec'd in the
// running container every interval (every start interval during the
// start period), a probe that outlasts its timeout is killed, and the
// status goes from "starting" to "healthy" at the first success and to
// "unhealthy" after retries failures in a row (failures within the start
// period do not count while the container has never been healthy). The
// last five results are kept in State.Health, which the record keeps,
// so that a restarted daemon goes on where it was.

const (
	defaultProbeInterval = 30 * time.Second
	defaultProbeTimeout  = 30 * time.Second
	defaultStartInterval = 5 * time.Second
	defaultProbeRetries  = 3
	maxHealthLog         = 5
	maxProbeOutput       = 4096
)

// mergeHealthcheck is the container's check: the user's fields over the
// image's, as dockerd merges them at create.
func mergeHealthcheck(user *container.HealthConfig, image *dockerspec.HealthcheckConfig) *container.HealthConfig {
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

// probeCommand is what a check runs, nil for none.
func probeCommand(cfg *container.Config) []string {
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

// startHealth begins the checks of a run of c that just started (or was
// taken back at start-up, when resumed keeps its state); c.mu is held.
func (d *Daemon) startHealth(c *ctr, t task.Task, resumed bool) {
	cmd := probeCommand(c.Config)
	if cmd == nil {
		c.State.Health = nil
		return
	}
	if !resumed || c.State.Health == nil {
		c.State.Health = &container.Health{Status: container.Starting, Log: []*container.HealthcheckResult{}}
	}
	go d.healthLoop(c, t, c.exited, cmd)
}

// healthLoop probes c until the run that ends with exited is over.
func (d *Daemon) healthLoop(c *ctr, t task.Task, exited chan struct{}, cmd []string) {
	h := c.Config.Healthcheck
	interval := orDuration(h.Interval, defaultProbeInterval)
	for {
		wait := interval
		c.mu.Lock()
		if c.State.Health != nil && c.State.Health.Status == container.Starting && time.Since(c.State.StartedAt) < h.StartPeriod {
			wait = orDuration(h.StartInterval, defaultStartInterval)
		}
		c.mu.Unlock()
		select {
		case <-exited:
			return
		case <-d.quit:
			return
		case <-time.After(wait):
		}
		res := d.probe(c, t, cmd, orDuration(h.Timeout, defaultProbeTimeout))
		select {
		case <-exited: // the run ended while probing: its result says nothing
			return
		default:
		}
		d.recordProbe(c, res)
	}
}

// probe runs cmd once in c.
func (d *Daemon) probe(c *ctr, t task.Task, cmd []string, timeout time.Duration) *container.HealthcheckResult {
	res := &container.HealthcheckResult{Start: time.Now().UTC(), ExitCode: -1}
	defer func() { res.End = time.Now().UTC() }()
	c.mu.Lock()
	pid := c.State.Pid
	c.mu.Unlock()
	proc, err := d.execSpec(t, pid, container.ExecCreateRequest{Cmd: cmd})
	if err != nil {
		res.Output = err.Error()
		return res
	}
	ctx := context.TODO()
	id := "health-" + newID()
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

// recordProbe takes a probe's result into c's health, and says so in an
// event when the status changes.
func (d *Daemon) recordProbe(c *ctr, res *container.HealthcheckResult) {
	c.mu.Lock()
	h := c.State.Health
	if h == nil || c.State.Status != container.StateRunning {
		c.mu.Unlock()
		return
	}
	before := h.Status
	h.Log = append(h.Log, res)
	if len(h.Log) > maxHealthLog {
		h.Log = h.Log[len(h.Log)-maxHealthLog:]
	}
	retries := c.Config.Healthcheck.Retries
	if retries <= 0 {
		retries = defaultProbeRetries
	}
	if res.ExitCode == 0 {
		h.FailingStreak, h.Status = 0, container.Healthy
	} else if h.Status != container.Starting || res.Start.Sub(c.State.StartedAt) >= c.Config.Healthcheck.StartPeriod {
		h.FailingStreak++
		if h.FailingStreak >= retries {
			h.Status = container.Unhealthy
		}
	}
	after := h.Status
	d.save(c)
	c.mu.Unlock()
	if after != before {
		d.containerEvent(c, events.Action(string(events.ActionHealthStatus)+": "+string(after)), nil)
	}
}

// healthSuffix is what ps adds to a running container's status.
func healthSuffix(h *container.Health) string {
	if h == nil {
		return ""
	}
	if h.Status == container.Starting {
		return " (health: starting)"
	}
	return " (" + string(h.Status) + ")"
}

// limitedBuffer keeps the first maxProbeOutput bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxProbeOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
