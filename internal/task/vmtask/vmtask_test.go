package vmtask_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/task/tasktest"
	"github.com/tent-project/tent/internal/task/vmtask"
	"github.com/tent-project/tent/internal/testutil"
	"github.com/tent-project/tent/internal/vm"
)

// The test binary is the monitor too, as tent-monitor is for the daemon.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "monitor" {
		os.Exit(monitor.Main(os.Args[2]))
	}
	os.Exit(m.Run())
}

// TestConformance holds the VM backend to the suite the process backend
// passes: each case boots a VM.
func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	host, err := vm.NewHost(vm.DefaultGuestDir, testutil.BuildAgent(t, dir), filepath.Join(dir, "state"))
	if err != nil {
		t.Skip(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tasktest.Run(t, vmtask.New(exe, host))
}
