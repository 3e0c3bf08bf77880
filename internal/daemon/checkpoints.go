package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/moby/moby/api/types/checkpoint"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/task"
)

// Checkpoints (docs/vm.md): a running container's whole state saved
// under a name, to start from later where it was. A task backend that can
// (task.Checkpointer: the VM backend, through QEMU's own state snapshot)
// writes the state; the engine keeps each checkpoint as a directory
// below the container's data (removed with it) with the addresses its
// networks had, which a restore asks for again: the guest kept them.

// checkpointName is dockerd's rule for checkpoint IDs.
var checkpointName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// endpointsFile holds a checkpoint's addresses by network ID.
const endpointsFile = "endpoints.json"

// savedEndpoint is an address a checkpointed container had.
type savedEndpoint struct {
	IP  netip.Addr `json:"ip"`
	MAC string     `json:"mac"`
}

func (d *Daemon) checkpointsDir(id string) string { return filepath.Join(d.dataDir(id), "checkpoints") }

// checkpointDir is where checkpoint name of c is, if it exists.
func (d *Daemon) checkpointDir(c *ctr, name string) (string, error) {
	if !checkpointName.MatchString(name) {
		return "", fmt.Errorf("invalid checkpoint ID (%s), only %s are allowed: %w", name, checkpointName, errdefs.ErrInvalidArgument)
	}
	dir := filepath.Join(d.checkpointsDir(c.ID), name)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("checkpoint %s does not exist for container %s: %w", name, c.ID, errdefs.ErrNotFound)
	}
	return dir, nil
}

// CheckpointCreate saves container ref's whole state as checkpoint
// r.CheckpointID; with r.Exit the container then stops (its restart
// policy does not apply), else it runs on.
func (d *Daemon) CheckpointCreate(ref string, r checkpoint.CreateRequest) error {
	if r.CheckpointDir != "" {
		return fmt.Errorf("checkpoints in a directory of the client's choice are not supported: %w", errdefs.ErrNotImplemented)
	}
	if !checkpointName.MatchString(r.CheckpointID) {
		return fmt.Errorf("invalid checkpoint ID (%s), only %s are allowed: %w", r.CheckpointID, checkpointName, errdefs.ErrInvalidArgument)
	}
	c, err := d.getRunning(ref)
	if err != nil {
		return err
	}
	exited := c.exited
	err = d.checkpoint(c, r)
	c.mu.Unlock()
	if err == nil && r.Exit {
		// As a SIGKILL's kill: answered once the container has stopped.
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
		}
	}
	return err
}

// checkpoint does the work of CheckpointCreate; c.mu is held.
func (d *Daemon) checkpoint(c *ctr, r checkpoint.CreateRequest) error {
	if c.State.Status == container.StatePaused {
		return fmt.Errorf("container %s is paused: unpause it to checkpoint it: %w", c.ID, errdefs.ErrConflict)
	}
	if r.Exit && c.HostConfig.AutoRemove {
		return fmt.Errorf("container %s is removed when it stops (--rm), and its checkpoints with it: checkpoint it with --leave-running: %w", c.ID, errdefs.ErrInvalidArgument)
	}
	cp, ok := c.task.(task.Checkpointer)
	if !ok {
		return fmt.Errorf("checkpointing a process container needs CRIU, which tent does not drive yet (a VM container, --isolation vm, can be): %w", errdefs.ErrNotImplemented)
	}
	root := d.checkpointsDir(c.ID)
	dir := filepath.Join(root, r.CheckpointID)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("checkpoint with name %s already exists for container %s: %w", r.CheckpointID, c.ID, errdefs.ErrAlreadyExists)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(root, ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	saved := map[string]savedEndpoint{}
	for netID, ep := range d.net.ContainerEndpoints(c.ID) {
		saved[netID] = savedEndpoint{IP: ep.IP, MAC: ep.MAC}
	}
	b, _ := json.Marshal(saved)
	if err := os.WriteFile(filepath.Join(tmp, endpointsFile), b, 0o600); err != nil {
		return err
	}
	stopped := c.ManuallyStopped
	if r.Exit {
		c.ManuallyStopped = true // a saved container is not restarted
	}
	if err := cp.Checkpoint(context.TODO(), tmp, r.Exit); err != nil {
		c.ManuallyStopped = stopped
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	d.containerEvent(c, events.ActionCheckpoint, nil)
	return nil
}

// CheckpointList lists container ref's checkpoints.
func (d *Daemon) CheckpointList(ref string) ([]checkpoint.Summary, error) {
	c, err := d.get(ref)
	if err != nil {
		return nil, err
	}
	out := []checkpoint.Summary{}
	ents, err := os.ReadDir(d.checkpointsDir(c.ID))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, checkpoint.Summary{Name: e.Name()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// CheckpointDelete removes checkpoint name of container ref.
func (d *Daemon) CheckpointDelete(ref, name string) error {
	c, err := d.get(ref)
	if err != nil {
		return err
	}
	dir, err := d.checkpointDir(c, name)
	if err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// savedEndpoints are the addresses a checkpoint's container had, by
// network ID (none without a checkpoint).
func savedEndpoints(dir string) (map[string]savedEndpoint, error) {
	if dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, endpointsFile))
	if err != nil {
		return nil, fmt.Errorf("the checkpoint's addresses: %w", err)
	}
	var out map[string]savedEndpoint
	return out, json.Unmarshal(b, &out)
}
