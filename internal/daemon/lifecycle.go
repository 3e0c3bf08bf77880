package daemon

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"syscall"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/mount"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/checkpoints"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/execs"
	"github.com/tent-project/tent/internal/mounts"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/signals"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
)

// The lifecycle of a container after Create: start (through a monitor),
// watch for its end, stop, kill, pause, wait, remove.

// Start runs a created or stopped container; from a checkpoint (its
// name, if not "") it goes on where the checkpoint saved it
// (checkpoints.go).
func (d *Daemon) Start(ref, checkpoint string) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	c.Mu.Lock()
	switch c.State.Status {
	case container.StateRunning, container.StatePaused:
		c.Mu.Unlock()
		return errdefs.ErrNotModified
	case container.StateRemoving, container.StateDead:
		c.Mu.Unlock()
		return fmt.Errorf("container %s is marked for removal and cannot be started: %w", c.ID, errdefs.ErrConflict)
	}
	restore := ""
	if checkpoint != "" {
		if restore, err = d.checkpoints(c.ID).Dir(checkpoint); err != nil {
			c.Mu.Unlock()
			return err
		}
	}
	err = d.startFrom(c, restore)
	if err != nil {
		// Nothing will come to the attached clients; an auto-remove
		// container goes, as in docker.
		c.ClosePending()
	}
	autoRemove := err != nil && c.HostConfig.AutoRemove
	c.Mu.Unlock()
	if autoRemove {
		d.Remove(c.ID, true, false)
	}
	return err
}

// IsNotModified reports whether err means "nothing to do": a start of a
// running container or a stop of a stopped one (HTTP 304, as docker).
func IsNotModified(err error) bool { return errors.Is(err, errdefs.ErrNotModified) }

// start does the work of Start; c.Mu is held.
func (d *Daemon) start(c *containers.Container) error { return d.startFrom(c, "") }

// startFrom is start, from the checkpoint in directory restore if not "".
func (d *Daemon) startFrom(c *containers.Container, restore string) (err error) {
	<-c.MonitorGone // the last run's clean-up is done
	ctx := context.TODO()
	rt, err := d.runtimes.Get(c.HostConfig.Runtime)
	if err != nil {
		return err
	}
	ms, err := d.snap.Mounts(d.snapshotKey(c.ID))
	if err != nil {
		return err
	}
	if c.HostConfig.AutoRemove {
		ms = snapshot.Volatile(ms)
	}
	volumesUp := false
	pins, err := checkpoints.Endpoints(restore)
	if err != nil {
		return err
	}
	eps, err := d.Networks.AllocateEndpoints(c, pins)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			d.Networks.ReleaseEndpoints(c)
			d.specs.ReleaseShm(c)
			if volumesUp {
				d.releaseVolumes(c)
			}
			c.State.Error = err.Error()
			c.State.ExitCode = execs.StartFailureCode(err)
			d.ctrs.Save(c)
			if c.State.ExitCode != 128 {
				// The program is missing or cannot run: a bad config
				// (HTTP 400, as dockerd), not a missing object.
				err = errdefs.WithClass(errors.New(err.Error()), errdefs.ErrInvalidArgument.Error())
			}
		}
	}()
	// The network is wired while the init sets up where the runtime can
	// (task.CreateOpts.Wire): off the start's path, and before the init
	// applies the spec's sysctls, so that those of eth0 find it. Not with
	// IPv6: its interfaces' IPv6 is turned on as they are wired, which
	// the spec's net.ipv6.conf.all.disable_ipv6 (spec.sysctls) would
	// then turn off again.
	wired := false
	var wire func(pid int) error
	if len(eps) > 0 && !slices.ContainsFunc(eps, func(ep *network.Endpoint) bool { return ep.IP6.IsValid() }) {
		wire = func(pid int) error {
			if err := d.Networks.WireEndpoints(c, eps, pid); err != nil {
				return err
			}
			wired = true
			return nil
		}
	}
	t, err := rt.Create(ctx, c.ID, task.CreateOpts{
		Paths:  d.paths(c.ID),
		Rootfs: ms,
		Prepare: func(root string) (*specs.Spec, error) {
			if err := d.mountVolumes(c); err != nil {
				return nil, err
			}
			volumesUp = true
			if err := mounts.CopyUp(d.vols, c.MountPoints, root); err != nil {
				return nil, err
			}
			return d.specs.Spec(c, root, eps)
		},
		IO:      task.IO{Terminal: c.Config.Tty, OpenStdin: c.Config.OpenStdin, StdinOnce: c.Config.StdinOnce},
		Log:     d.logOptions(c),
		Network: len(eps) > 0,
		Wire:    wire,
		Restore: restore,
	})
	if err != nil {
		return err
	}
	c.Task = t
	c.State = containers.State{Status: container.StateRunning, Pid: t.Pid(), StartedAt: time.Now().UTC()}
	c.ManuallyStopped = false
	// The record is written while the container starts, and the start
	// does not wait for it (it took ~2 ms of a `run --rm`'s ~27 here:
	// two fdatasyncs): a daemon that dies before it is written finds a
	// started container recorded as created, and restore adopts it;
	// later writes of the record (the exit's, the removal) come after it
	// (containers.Store orders them). A record that cannot be written is
	// logged, as dockerd does ("failed to store container").
	saved := d.ctrs.SaveAsync(c)
	c.ConnectPending()
	if !wired {
		err = d.Networks.WireEndpoints(c, eps, t.Pid())
	}
	if err == nil {
		err = t.Start(ctx)
	}
	if err != nil {
		t.Kill(ctx, syscall.SIGKILL, true)
		_, gone, _ := t.Wait(ctx)
		<-gone
		t.Delete(ctx)
		c.State.Status = container.StateExited
		c.State.Pid = 0
		return err
	}
	d.background(func() {
		if err := <-saved; err != nil {
			d.log.Error("failed to store container", "container", c.ID, "err", err)
		}
	})
	exited := c.Exited
	go d.watch(c, exited, t)
	d.startHealth(c, t, false)
	d.containerEvent(c, events.ActionStart, nil)
	return nil
}

// watch waits for the run of t that started with exited to end and
// records it.
func (d *Daemon) watch(c *containers.Container, exited chan struct{}, t task.Task) {
	ctx := context.TODO()
	exit, gone, err := t.Wait(ctx)
	if err != nil {
		d.log.Error("container monitor lost", "container", c.ID, "err", err)
	}
	c.Mu.Lock()
	if c.Exited != exited { // already recorded
		c.Mu.Unlock()
		return
	}
	c.MonitorGone = gone
	if err := t.Delete(ctx); err != nil {
		d.log.Warn("delete task", "container", c.ID, "err", err)
	}
	d.releaseVolumes(c)
	d.Networks.ReleaseEndpoints(c)
	d.specs.ReleaseShm(c)
	c.State.Status = container.StateExited
	c.State.Pid = 0
	c.State.ExitCode = exit.Code
	c.State.OOMKilled = exit.OOMKilled
	c.State.FinishedAt = exit.At
	if err != nil {
		c.State.Error = "the container's monitor ended unexpectedly"
	}
	// An auto-remove container's record is deleted next; a crash before
	// that finds it running, reads the exit file and removes it then.
	if !c.HostConfig.AutoRemove {
		if serr := d.ctrs.Save(c); serr != nil {
			d.log.Error("save container", "container", c.ID, "err", serr)
		}
	}
	c.EndRun()
	restart := c.ShouldRestart()
	autoRemove := c.HostConfig.AutoRemove
	c.Mu.Unlock()
	if exit.OOMKilled {
		d.containerEvent(c, events.ActionOOM, nil)
	}
	d.containerEvent(c, events.ActionDie, map[string]string{"exitCode": fmt.Sprint(exit.Code)})
	switch {
	case autoRemove:
		if err := d.Remove(c.ID, true, false); err != nil && !errdefs.IsNotFound(err) {
			d.log.Error("auto-remove", "container", c.ID, "err", err)
		}
	case restart:
		c.Mu.Lock()
		c.RestartCount++
		if err := d.start(c); err != nil {
			d.log.Error("restart", "container", c.ID, "err", err)
		}
		c.Mu.Unlock()
	}
}

// Kill sends a signal (default SIGKILL) to the container's init.
func (d *Daemon) Kill(ref, sig string) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	s := syscall.SIGKILL
	if sig != "" {
		if s, err = signals.Parse(sig); err != nil {
			return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	c.Mu.Lock()
	if !c.Running() {
		c.Mu.Unlock()
		return fmt.Errorf("Cannot kill container: %s: container %s is not running: %w", ref, c.ID, errdefs.ErrConflict)
	}
	if s == syscall.SIGKILL || s == syscall.SIGTERM {
		c.ManuallyStopped = true
	}
	exited := c.Exited
	err = d.signal(c, s)
	c.Mu.Unlock()
	if err == nil && s == syscall.SIGKILL {
		// As dockerd: a SIGKILL is answered once the container has
		// stopped, so that an inspect or a remove right after it sees
		// it stopped (clients such as the SDKs rely on it).
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
		}
	}
	return err
}

// signal sends s to a running container's init; c.Mu is held.
func (d *Daemon) signal(c *containers.Container, s syscall.Signal) error {
	ctx := context.TODO()
	if c.State.Status == container.StatePaused && (s == syscall.SIGKILL || s == syscall.SIGTERM) {
		defer c.Task.Resume(ctx)
	}
	if err := c.Task.Kill(ctx, s, false); err != nil {
		return err
	}
	// As dockerd: every signal sent (kill, stop, rm -f) is a kill event.
	d.containerEvent(c, events.ActionKill, map[string]string{"signal": strconv.Itoa(int(s))})
	return nil
}

// Stop ends a container: its stop signal, then SIGKILL after timeout
// seconds (nil: the container's StopTimeout or 10; -1: wait for ever).
func (d *Daemon) Stop(ref string, sig string, timeout *int) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	c.Mu.Lock()
	if !c.Running() {
		c.Mu.Unlock()
		return errdefs.ErrNotModified
	}
	if sig == "" {
		sig = c.Config.StopSignal
	}
	s := syscall.SIGTERM
	if sig != "" {
		if s, err = signals.Parse(sig); err != nil {
			c.Mu.Unlock()
			return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	t := 10
	if c.Config.StopTimeout != nil {
		t = *c.Config.StopTimeout
	}
	if timeout != nil {
		t = *timeout
	}
	c.ManuallyStopped = true
	exited := c.Exited
	err = d.signal(c, s)
	c.Mu.Unlock()
	if err != nil {
		return err
	}
	var after <-chan time.Time
	if t >= 0 {
		after = time.After(time.Duration(t) * time.Second)
	}
	select {
	case <-exited:
	case <-after:
		c.Mu.Lock()
		if c.Exited == exited {
			err = d.signal(c, syscall.SIGKILL)
		}
		c.Mu.Unlock()
		<-exited
	}
	if err == nil {
		c.Mu.Lock()
		d.containerEvent(c, events.ActionStop, nil)
		c.Mu.Unlock()
	}
	return err
}

// Restart stops (if running) and starts a container.
func (d *Daemon) Restart(ref string, sig string, timeout *int) error {
	if err := d.Stop(ref, sig, timeout); err != nil && !IsNotModified(err) {
		return err
	}
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	if c.Running() {
		return nil
	}
	c.RestartCount++
	if err := d.start(c); err != nil {
		return err
	}
	d.containerEvent(c, events.ActionRestart, nil)
	return nil
}

// Pause freezes the container; Unpause thaws it.
func (d *Daemon) Pause(ref string, pause bool) error {
	c, err := d.ctrs.GetRunning(ref)
	if err != nil {
		return err
	}
	defer c.Mu.Unlock()
	if pause == (c.State.Status == container.StatePaused) {
		what := "paused"
		if !pause {
			what = "not paused"
		}
		return fmt.Errorf("container %s is %s: %w", c.ID, what, errdefs.ErrConflict)
	}
	action := events.ActionPause
	if pause {
		err = c.Task.Pause(context.TODO())
		c.State.Status = container.StatePaused
	} else {
		err = c.Task.Resume(context.TODO())
		c.State.Status, action = container.StateRunning, events.ActionUnPause
	}
	if err != nil {
		return err
	}
	d.containerEvent(c, action, nil)
	return d.ctrs.Save(c)
}

// Wait blocks until the container reaches condition, and returns its exit
// status then. ready is called once the wait is registered.
func (d *Daemon) Wait(ctx context.Context, ref string, cond container.WaitCondition, ready func()) (container.WaitResponse, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return container.WaitResponse{}, err
	}
	return c.Wait(ctx, cond, ready)
}

// Remove deletes a container and its writable layer; a running one only
// with force (which kills it first).
func (d *Daemon) Remove(ref string, force, volumes bool) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	c.Mu.Lock()
	if c.State.Status == container.StateRemoving {
		c.Mu.Unlock()
		return fmt.Errorf("removal of container %s is already in progress: %w", c.ID, errdefs.ErrConflict)
	}
	if c.Running() {
		if !force {
			c.Mu.Unlock()
			what := "running"
			if c.State.Status == container.StatePaused {
				what = "paused"
			}
			return fmt.Errorf("cannot remove container %q: container is %s: stop the container before removing or force remove: %w", "/"+c.Name, what, errdefs.ErrConflict)
		}
		c.ManuallyStopped = true
		exited := c.Exited
		err := d.signal(c, syscall.SIGKILL)
		c.Mu.Unlock()
		if err != nil {
			return err
		}
		<-exited
		c.Mu.Lock()
	}
	// Anonymous volumes go with the container (rm -v, --rm), once it is
	// gone and c.Mu released; ones still used elsewhere stay.
	var anonymous []string
	if volumes || c.HostConfig.AutoRemove {
		for _, m := range c.Mounts() {
			if m.Type != mount.TypeVolume {
				continue
			}
			if v, err := d.vols.Get(m.Name); err == nil && v.Anonymous() {
				anonymous = append(anonymous, m.Name)
			}
		}
	}
	defer func() { d.removeVolumes(anonymous) }()
	defer c.Mu.Unlock()
	if c.State.Status == container.StateRemoving {
		return nil // auto-remove got there first
	}
	c.State.Status = container.StateRemoving
	if c.Task != nil {
		c.Task.Delete(context.TODO()) // done by watch already, unless it failed
		c.Task = nil
	}
	// The record and the writable layer's record go together (two
	// databases, so in parallel); the directories after them, in the
	// background. Whatever a crash leaves of this, the next start of the
	// daemon sweeps: layers and directories of containers without a
	// record, a record whose layer is gone is removed by the next rm.
	layer := make(chan error, 1)
	go func() { layer <- d.snap.Remove(d.snapshotKey(c.ID)) }()
	err = d.ctrs.DeleteRecord(c.ID)
	if lerr := <-layer; lerr != nil && !errdefs.IsNotFound(lerr) {
		err = errors.Join(err, lerr)
	}
	if err != nil {
		c.State.Status = container.StateDead
		c.State.Error = err.Error()
		d.ctrs.Save(c)
		return fmt.Errorf("could not remove container %s: %w", c.ID, err)
	}
	gone := c.MonitorGone
	d.background(func() {
		select {
		case <-gone: // it writes the exit file there
		case <-d.quit:
			return // the next start sweeps the directories
		}
		for _, dir := range []string{d.execDir(c.ID), d.dataDir(c.ID)} {
			if err := os.RemoveAll(dir); err != nil {
				d.log.Warn("remove container directory (the next start sweeps it)", "dir", dir, "err", err)
			}
		}
	})
	d.ctrs.Forget(c)
	d.Manager.Forget(c.ID)
	close(c.Removed)
	c.ClosePending()
	d.containerEvent(c, events.ActionDestroy, nil)
	return nil
}

// Rename gives a container a new name.
func (d *Daemon) Rename(ref, name string) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("Neither old nor new names may be empty: %w", errdefs.ErrInvalidArgument)
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	old, err := d.ctrs.Rename(c, name)
	if err != nil {
		return err
	}
	d.containerEvent(c, events.ActionRename, map[string]string{"oldName": "/" + old})
	return d.ctrs.Save(c)
}

// Prune removes every stopped container and returns their IDs and the
// bytes their writable layers held (docker's SpaceReclaimed).
func (d *Daemon) Prune(f backend.PruneFilter) (ids []string, reclaimed uint64, err error) {
	for _, c := range d.ctrs.All() {
		c.Mu.Lock()
		stopped := c.State.Status == container.StateExited || c.State.Status == container.StateCreated || c.State.Status == container.StateDead
		match := f.Matches(c.Created, c.Config.Labels)
		c.Mu.Unlock()
		if !stopped || !match {
			continue
		}
		size, _ := d.snap.Usage(d.snapshotKey(c.ID))
		if err := d.Remove(c.ID, false, false); err == nil {
			ids = append(ids, c.ID)
			reclaimed += uint64(size)
		}
	}
	return ids, reclaimed, nil
}
