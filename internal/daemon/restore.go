package daemon

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/snapshot"
	"github.com/tent-project/tent/internal/task"
)

// restore loads the containers of metadata.db and re-adopts the running
// ones: each is watched through its monitor, which may have recorded an
// exit while no daemon was there.
func (d *Daemon) restore() (boot []string, err error) {
	recs, err := d.ctrs.Load(func(id string, err error) {
		d.log.Error("unreadable container record", "id", id, "err", err)
	})
	if err != nil {
		return nil, err
	}
	for _, r := range recs {
		if r.State.Status == container.StateCreated {
			if _, err := d.snap.Stat(d.snapshotKey(r.ID)); errdefs.IsNotFound(err) {
				// A create that a crash interrupted (its layer is made
				// in parallel with the record): undone.
				d.ctrs.DeleteRecord(r.ID)
				continue
			}
		}
		c := containers.New(r)
		d.ctrs.Add(c)
		rt, err := d.runtimes.Get(r.HostConfig.Runtime)
		if err != nil {
			d.log.Error("container of an unknown runtime", "id", r.ID, "err", err)
			continue
		}
		ctx := context.TODO()
		switch r.State.Status {
		case container.StateRunning, container.StatePaused:
			d.countVolumes(c)
			t, err := rt.Connect(ctx, r.ID, d.paths(r.ID))
			if err != nil {
				return nil, err
			}
			st, _ := t.State(ctx)
			switch st.Status {
			case task.Created:
				// The daemon died between creating and starting it.
				t.Kill(ctx, syscall.SIGKILL, true)
			case task.Stopped:
				// It ended while no daemon ran (its monitor gone too after
				// a reboot): not running from now on; watch records how
				// it ended and applies its restart policy.
				c.State.Status, c.State.Pid = container.StateExited, 0
			}
			c.Task = t
			d.restoreExecs(c.ID, t)
			go d.watch(c, c.Exited, t)
			if st.Status != task.Stopped {
				d.startHealth(c, t, true)
			}
		case container.StateRemoving:
			c.State.Status = container.StateDead
		default:
			// A start does not wait for its record (startFrom): a daemon
			// that died right after one left the record of before it,
			// "created" or the last run's "exited".
			if t, err := rt.Connect(ctx, r.ID, d.paths(r.ID)); err == nil {
				if st, _ := t.State(ctx); st.Status == task.Running || st.Status == task.Paused {
					// Started by a daemon that died before its record said so.
					c.State = containers.State{Status: container.StateRunning, Pid: st.Pid, StartedAt: st.Created}
					if st.Status == task.Paused {
						c.State.Status = container.StatePaused
					}
					d.countVolumes(c)
					c.Task = t
					d.restoreExecs(c.ID, t)
					go d.watch(c, c.Exited, t)
					continue
				}
				if endedUnrecorded(r, d.exitFile(r.ID)) {
					// Started so, and ended while no daemon ran: watch
					// records the end from its exit file, as for a
					// container recorded running.
					d.countVolumes(c)
					c.Task = t
					go d.watch(c, c.Exited, t)
					continue
				}
			}
			// Never started, or ended: what is left of its task goes.
			rt.Cleanup(ctx, r.ID, d.paths(r.ID))
			d.specs.ReleaseShm(c)
			if c.RestartOnBoot() {
				boot = append(boot, r.ID)
			}
		}
	}
	// Leftovers of containers whose record never made it, or whose
	// removal a crash interrupted.
	for _, root := range []string{d.cfg.DataRoot, d.cfg.ExecRoot} {
		entries, _ := os.ReadDir(filepath.Join(root, "containers"))
		for _, e := range entries {
			if !d.ctrs.Has(e.Name()) {
				os.RemoveAll(filepath.Join(root, "containers", e.Name()))
			}
		}
	}
	var orphans []string
	err = d.snap.Walk(func(i snapshot.Info) error {
		if id, ok := strings.CutPrefix(i.Key, "container-"); ok {
			if !d.ctrs.Has(id) {
				orphans = append(orphans, id)
			}
		}
		return nil
	})
	for _, id := range orphans {
		for _, rt := range d.runtimes.All() {
			rt.Cleanup(context.TODO(), id, d.paths(id))
		}
		if err := d.snap.Remove(d.snapshotKey(id)); err != nil {
			d.log.Warn("remove orphan snapshot", "container", id, "err", err)
		}
	}
	return boot, err
}

// restoreExecs takes back the execs of container id's task t.
func (d *Daemon) restoreExecs(id string, t task.Task) {
	if err := d.Manager.Restore(id, t); err != nil {
		d.log.Warn("execs of a re-adopted container", "container", id, "err", err)
	}
}

// endedUnrecorded tells whether the exit file holds an end of a run the
// record r does not know of (the run's create removes the last one's
// file, and its monitor writes the file as it ends).
func endedUnrecorded(r containers.Record, exitFile string) bool {
	x, err := monitor.ReadExit(exitFile)
	return err == nil && (r.State.Status == container.StateCreated || x.At.After(r.State.FinishedAt))
}
