package vmtask_test

import (
	"os"
	"os/exec"
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
	agent := filepath.Join(dir, "tent-agent")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", agent, "github.com/tent-project/tent/cmd/tent-agent")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the agent: %v: %s", err, out)
	}
	host, err := vm.NewHost(vm.DefaultGuestDir, agent, filepath.Join(dir, "state"))
	if err != nil {
		t.Skip(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	tasktest.Run(t, vmtask.New(exe, host))
}
