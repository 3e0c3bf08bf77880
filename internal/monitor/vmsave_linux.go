package monitor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tent-project/tent/internal/vm"
)

// A VM's checkpoint is QEMU's own state snapshot (a migration to a file:
// memory, vCPUs and devices) and the monitor's numbering of the guest's
// processes, in a directory of the engine's:
//
//	vm.state        what `migrate` wrote
//	disk.qcow2      the container's disk as it was then (its overlay: the
//	                image's base disk is shared and never written)
//	checkpoint.json the monitor's side (checkpointMeta)
//
// The disk goes with the memory: a guest restored over a disk that was
// written since would find its page cache and its file system's journal
// out of step with it. So a restore puts the checkpoint's disk back,
// and one checkpoint can be restored any number of times.
//
// A restore boots the same machine with -incoming from vm.state, paused
// (-S) until the engine has wired its networks; the agent and the
// workload go on where they were, their output relayed by the new
// monitor. QEMU itself refuses to save a VM whose guest has a 9p share
// mounted (volumes and binds): its error is the checkpoint's.
const (
	stateName      = "vm.state"
	diskName       = "disk.qcow2"
	checkpointMeta = "checkpoint.json"
	// saveTimeout bounds writing a VM's state (its memory: a few hundred
	// MiB at disk speed).
	saveTimeout = 5 * time.Minute
)

type checkpointInfo struct {
	// NextExec: execs of the restored VM are numbered on from here, so
	// that the frames of an exec of the saved VM's (still running in the
	// guest) go to none of them.
	NextExec uint32 `json:"nextExec"`
}

// checkpoint saves the VM's whole state into dir; with exit it then ends
// the VM (its workload's exit code is 0: saved, not failed), else it lets
// it run on.
func (v *vmWorkload) checkpoint(dir string, exit bool) error {
	q, err := vm.DialQMP(v.dir, v.qmp)
	if err != nil {
		return err
	}
	defer q.Close()
	state := filepath.Join(dir, stateName)
	tmp := state + ".tmp"
	// The file is complete once renamed: QEMU reports the migration done
	// when it has written its last byte into the pipe, not when cat has.
	uri := "exec:cat > " + vm.ShellQuote(tmp) + " && mv " + vm.ShellQuote(tmp) + " " + vm.ShellQuote(state)
	if err := q.Call("migrate", map[string]any{"uri": uri}, nil); err != nil {
		return err
	}
	err = q.Migrated(saveTimeout)
	if err == nil {
		err = waitFor(state, 30*time.Second)
	}
	if err == nil {
		// The VM is stopped and QEMU has flushed its disk at the end of
		// the migration: the overlay is whole.
		err = copySparse(v.disk, filepath.Join(dir, diskName))
	}
	if err == nil {
		v.mu.Lock()
		b, _ := json.Marshal(checkpointInfo{NextExec: v.nextID + 1})
		v.mu.Unlock()
		err = writeFileAtomic(filepath.Join(dir, checkpointMeta), b)
	}
	if err != nil {
		os.Remove(tmp)
		os.Remove(state)
		os.Remove(filepath.Join(dir, diskName))
		q.Call("cont", nil, nil) // a failed save leaves it running, as it was
		return err
	}
	if !exit {
		return q.Call("cont", nil, nil) // the VM stopped when its state was complete
	}
	v.setCode(0)
	return v.qemu.Process.Kill()
}

// waitFor waits until path exists.
func waitFor(path string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the VM's state did not reach %s", path)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// copySparse copies a disk image, its holes kept.
func copySparse(src, dst string) error {
	if out, err := exec.Command("cp", "--sparse=always", src, dst+".tmp").CombinedOutput(); err != nil {
		os.Remove(dst + ".tmp")
		return fmt.Errorf("copy the VM's disk: %v: %s", err, out)
	}
	return os.Rename(dst+".tmp", dst)
}

// restoreArgs puts the checkpoint's disk in dir back as disk and returns
// QEMU's arguments to boot from its state, paused, and the exec number
// to go on from.
func restoreArgs(dir, disk string) ([]string, uint32, error) {
	state := filepath.Join(dir, stateName)
	if _, err := os.Stat(state); err != nil {
		return nil, 0, fmt.Errorf("the checkpoint has no VM state: %w", err)
	}
	var info checkpointInfo
	b, err := os.ReadFile(filepath.Join(dir, checkpointMeta))
	if err == nil {
		err = json.Unmarshal(b, &info)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("the checkpoint's record: %w", err)
	}
	if err := copySparse(filepath.Join(dir, diskName), disk); err != nil {
		return nil, 0, err
	}
	return []string{"-S", "-incoming", "exec:cat " + vm.ShellQuote(state)}, info.NextExec, nil
}

// machineReady waits until QEMU answers on its machine protocol: its
// devices are made (it loads the state after).
func (v *vmWorkload) machineReady(deadline time.Time) error {
	for {
		q, err := vm.DialQMP(v.dir, v.qmp)
		if err == nil {
			err = q.Call("query-status", nil, nil)
			q.Close()
			if err == nil {
				return nil
			}
		}
		select {
		case <-v.exited:
			return errors.New("the VM ended before its machine was made")
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the restored VM's machine did not answer: %w", err)
		}
	}
}

// resume lets a restored VM run, once QEMU has loaded its state.
func (v *vmWorkload) resume() error {
	q, err := vm.DialQMP(v.dir, v.qmp)
	if err != nil {
		return err
	}
	defer q.Close()
	err = q.Await("query-status", saveTimeout, func(r json.RawMessage) (bool, error) {
		var st struct {
			Status string `json:"status"`
		}
		json.Unmarshal(r, &st)
		switch st.Status {
		case "inmigrate":
			return false, nil
		case "paused", "prelaunch", "postmigrate", "running":
			return true, nil
		}
		return true, errors.New("restoring the VM: QEMU is " + st.Status)
	})
	if err != nil {
		return err
	}
	return q.Call("cont", nil, nil)
}
