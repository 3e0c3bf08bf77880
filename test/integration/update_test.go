package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/cgroups"
)

// cgroupFile reads a file of a tent container's cgroup (v1 controller
// directory or the v2 unified one).
func cgroupFile(t *testing.T, id, controller, v1File, v2File string) string {
	t.Helper()
	cg, err := cgroups.New(filepath.Join(engineCgroupParent, id))
	if err != nil {
		t.Fatal(err)
	}
	file := v1File
	if cgroups.Unified() {
		file = v2File
	}
	b, err := os.ReadFile(filepath.Join(cg.Dir(controller), file))
	if err != nil {
		t.Fatalf("cgroup %s: %v", file, err)
	}
	return strings.TrimSpace(string(b))
}

// TestUpdate: docker update of a running and a stopped container, held
// to dockerd's record of the same updates and to the live cgroup.
func TestUpdate(t *testing.T) {
	_, e, engines, images := startPair(t)
	const f = `{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}} {{.HostConfig.MemoryReservation}} {{.HostConfig.NanoCpus}} {{.HostConfig.CpuShares}} {{.HostConfig.CpusetCpus}} {{.HostConfig.PidsLimit}} {{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}`
	got := map[string][]string{}
	for name, en := range engines {
		en.must(t, "run", "-d", "--name", "live", "--network", "none", "--memory", "64m", images[name], "sleep", "1000")
		en.must(t, "create", "--name", "later", "--network", "none", images[name], "sleep", "1000")
		en.must(t, "update", "--memory", "100m", "--memory-swap", "200m", "--memory-reservation", "50m", "--cpus", "0.5",
			"--cpu-shares", "512", "--cpuset-cpus", "0", "--pids-limit", "50", "--restart", "on-failure:3", "live")
		en.must(t, "update", "--memory", "80m", "--memory-swap", "160m", "--pids-limit", "20", "--restart", "always", "later")
		got[name] = []string{en.must(t, "inspect", "-f", f, "live"), en.must(t, "inspect", "-f", f, "later")}
	}
	for i, which := range []string{"running", "stopped"} {
		if got["tent"][i] != got["docker"][i] {
			t.Errorf("the %s container's record after update:\ntent   %s\ndocker %s", which, got["tent"][i], got["docker"][i])
		}
	}

	live := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "live"))
	for _, c := range []struct{ controller, v1, v2, want string }{
		{"memory", "memory.limit_in_bytes", "memory.max", "104857600"},
		{"memory", "memory.soft_limit_in_bytes", "memory.low", "52428800"},
		{"cpu", "cpu.cfs_quota_us", "cpu.max", "50000"},
		{"cpu", "cpu.shares", "cpu.weight", "512"},
		{"cpuset", "cpuset.cpus", "cpuset.cpus", "0"},
		{"pids", "pids.max", "pids.max", "50"},
	} {
		v := cgroupFile(t, live, c.controller, c.v1, c.v2)
		if cgroups.Unified() && c.v2 != c.v1 {
			if !strings.Contains(v, c.want) && c.v2 != "cpu.weight" {
				t.Errorf("%s = %q, want %s in it", c.v2, v, c.want)
			}
			continue
		}
		if v != c.want {
			t.Errorf("%s = %q after update, want %s", c.v1, v, c.want)
		}
	}
	// The stopped container's update holds at its start.
	e.must(t, "start", "later")
	later := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "later"))
	if v := cgroupFile(t, later, "pids", "pids.max", "pids.max"); v != "20" {
		t.Errorf("pids.max of the started container %q, want its update's 20", v)
	}
	// Unlimited again.
	e.must(t, "update", "--pids-limit", "-1", "live")
	if v := cgroupFile(t, live, "pids", "pids.max", "pids.max"); v != "max" {
		t.Errorf("pids.max after --pids-limit -1: %q", v)
	}

	t.Run("errors", func(t *testing.T) {
		for name, en := range engines {
			en.must(t, "create", "--name", "rm", "--rm", "--network", "none", images[name], "true")
			en.must(t, "create", "--name", "idle", "--network", "none", images[name], "true")
		}
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"update", "--memory", "1m", "live"}, "Minimum memory limit allowed is 6MB"},
			{[]string{"update", "--memory", "1g", "live"}, "Memory limit should be smaller than already set memoryswap limit"},
			{[]string{"update", "--memory", "10m", "idle"}, "Memory limit should be smaller than already set memoryswap limit"},
			{[]string{"update", "--restart", "always", "rm"}, "Restart policy cannot be updated because AutoRemove is enabled"},
			{[]string{"update", "--cpus", "1", "--cpu-quota", "5000", "live"}, "Conflicting options"},
			{[]string{"update", "--memory", "100m", "nosuch"}, "No such container"},
		} {
			for name, en := range engines {
				out, code := en.run(c.args...)
				if code == 0 || !strings.Contains(out, c.want) {
					t.Errorf("%s: docker %v: exit %d %q; want an error with %q", name, c.args, code, out, c.want)
				}
			}
		}
		// A field the update would not apply is refused, not dropped. (The
		// record holds --pids-limit -1 as 0, unlimited, as dockerd's.)
		if code := e.api(t, "POST", "/containers/live/update", `{"MemorySwappiness": 10}`, nil); code != 501 {
			t.Errorf("an update of memory swappiness: %d, want 501", code)
		}
		if got, want := e.must(t, "inspect", "-f", f, "live"), strings.Replace(got["tent"][0], " 50 ", " 0 ", 1); got != want {
			t.Errorf("failed updates changed the record: %s, want %s", got, want)
		}
	})

	t.Run("tent CLI", func(t *testing.T) {
		out, errOut, code := capture(t, exec.Command(tentBin(), "-H", e.host, "update", "--memory", "120m", "--memory-swap", "-1", "live"), nil)
		if code != 0 || out != "live\n" {
			t.Fatalf("tent update: %d %q %s", code, out, errOut)
		}
		if v := cgroupFile(t, live, "memory", "memory.limit_in_bytes", "memory.max"); v != "125829120" {
			t.Errorf("memory limit after tent update: %s", v)
		}
	})
}
