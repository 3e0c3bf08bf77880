package cgroups

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestV2Lifecycle runs the v2 manager against whatever cgroup2 mount the
// host has (the unified half of a hybrid host has no controllers, so only
// the controller-free parts are exercised there: create, attach, list,
// freeze, device program, destroy).
func TestV2Lifecycle(t *testing.T) {
	root := unifiedRoot(t)
	m := &v2{root: root, dir: filepath.Join(root, "tent-v2test-"+strconv.Itoa(os.Getpid()), "leaf")}
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = m.Destroy()
		_ = removeDir(filepath.Dir(m.dir))
	}()
	if err := m.Apply(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	pids, err := m.Pids()
	if err != nil || len(pids) != 1 || pids[0] != cmd.Process.Pid {
		t.Fatalf("Pids = %v, %v", pids, err)
	}
	if err := m.Freeze(); err != nil {
		t.Fatal(err)
	}
	if frozen, err := m.Frozen(); err != nil || !frozen {
		t.Fatalf("Frozen = %v, %v", frozen, err)
	}
	if err := m.Thaw(); err != nil {
		t.Fatal(err)
	}
	if frozen, _ := m.Frozen(); frozen {
		t.Fatal("still frozen after Thaw")
	}
	if err := m.Set(&specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}); err != nil {
		t.Fatalf("Set devices: %v", err)
	}
	// Destroy refuses while a process lives, then succeeds.
	if err := m.Destroy(); err == nil {
		t.Fatal("Destroy succeeded with a live process")
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if err := m.Destroy(); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(m.dir); !os.IsNotExist(err) {
		t.Fatalf("cgroup left behind: %v", err)
	}
}

func TestV2Conversions(t *testing.T) {
	for _, tc := range []struct{ shares, weight uint64 }{{2, 1}, {1024, 39}, {262144, 10000}} {
		if got := shares2weight(tc.shares); got != tc.weight {
			t.Errorf("shares2weight(%d) = %d, want %d", tc.shares, got, tc.weight)
		}
	}
	if got := blkio2io(10); got != 1 {
		t.Errorf("blkio2io(10) = %d", got)
	}
	if got := blkio2io(1000); got != 10000 {
		t.Errorf("blkio2io(1000) = %d", got)
	}
}
