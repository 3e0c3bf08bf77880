package daemon

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/execs"
	"github.com/tent-project/tent/internal/health"
	"github.com/tent-project/tent/internal/stringid"
	"github.com/tent-project/tent/internal/task"
)

// startHealth begins the checks of a run of c that just started (or was
// taken back at start-up, when resumed keeps its state; internal/health);
// c.Mu is held.
func (d *Daemon) startHealth(c *containers.Container, t task.Task, resumed bool) {
	cmd := health.Command(c.Config)
	if cmd == nil {
		c.State.Health = nil
		return
	}
	if !resumed || c.State.Health == nil {
		c.State.Health = health.Starting()
	}
	go d.healthLoop(c, t, c.Exited, cmd)
}

// healthLoop probes c until the run that ends with exited is over.
func (d *Daemon) healthLoop(c *containers.Container, t task.Task, exited chan struct{}, cmd []string) {
	cfg := c.Config.Healthcheck
	for {
		c.Mu.Lock()
		wait := health.Wait(cfg, c.State.Health, c.State.StartedAt)
		pid := c.State.Pid
		c.Mu.Unlock()
		select {
		case <-exited:
			return
		case <-d.quit:
			return
		case <-time.After(wait):
		}
		res := &container.HealthcheckResult{Start: time.Now().UTC(), End: time.Now().UTC(), ExitCode: -1}
		if proc, err := execs.Spec(t, pid, container.ExecCreateRequest{Cmd: cmd}); err != nil {
			res.Output = err.Error()
		} else {
			res = health.Probe(context.TODO(), t, "health-"+stringid.New(), proc, health.Timeout(cfg))
		}
		select {
		case <-exited: // the run ended while probing: its result says nothing
			return
		default:
		}
		d.recordProbe(c, res)
	}
}

// recordProbe takes a probe's result into c's health, and says so in an
// event when the status changes.
func (d *Daemon) recordProbe(c *containers.Container, res *container.HealthcheckResult) {
	c.Mu.Lock()
	h := c.State.Health
	if h == nil || c.State.Status != container.StateRunning {
		c.Mu.Unlock()
		return
	}
	changed := health.Record(c.Config.Healthcheck, h, c.State.StartedAt, res)
	status := h.Status
	d.ctrs.Save(c)
	c.Mu.Unlock()
	if changed {
		d.containerEvent(c, events.Action(string(events.ActionHealthStatus)+": "+string(status)), nil)
	}
}
