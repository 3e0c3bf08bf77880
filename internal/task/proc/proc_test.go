package proc_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/task/proc"
	"github.com/tent-project/tent/internal/task/tasktest"
	"github.com/tent-project/tent/internal/testutil"
)

// The test binary is the monitor and the container init too, as
// tent-monitor is for the daemon.
func TestMain(m *testing.M) {
	if runtime.IsChild() {
		runtime.ChildMain()
	}
	if len(os.Args) == 3 && os.Args[1] == "monitor" {
		os.Exit(monitor.Main(os.Args[2]))
	}
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Its spare's init waits in a cgroup beside the suite's containers':
	// the containers' cgroups are that one renamed.
	rt, err := proc.New(exe, filepath.Join(t.TempDir(), "state"), tasktest.CgroupParent, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close() // before the suite's clean-up removes the parent
	tasktest.Run(t, rt)
}
