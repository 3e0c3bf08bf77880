package ocibin_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/task/ocibin"
	"github.com/tent-project/tent/internal/task/tasktest"
	"github.com/tent-project/tent/internal/testutil"
)

// The test binary is the monitor, as tent-monitor is for the daemon.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "monitor" {
		os.Exit(monitor.Main(os.Args[2]))
	}
	os.Exit(m.Run())
}

// runc, as the binary a user adds most (Debian's; scripts/deps.sh
// installs it), held to the suite tent's own runtime passes.
func TestConformanceRunc(t *testing.T) {
	testutil.RequiresRoot(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Skip("runc is not installed (scripts/deps.sh installs it)")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	rt, err := ocibin.New(ocibin.Binary{Path: runc}, filepath.Join(t.TempDir(), "state"), exe)
	if err != nil {
		t.Fatal(err)
	}
	tasktest.Run(t, rt)
}
