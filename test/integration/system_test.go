package integration

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/testutil"
)

// dfCounts is `system df` without its sizes: type, total, active.
func dfCounts(t *testing.T, d *dockerEngine) []string {
	t.Helper()
	return strings.Split(strings.TrimSpace(d.must(t, "system", "df", "--format", "{{.Type}} {{.TotalCount}} {{.Active}}")), "\n")
}

// TestSystemDFAndPrune: the same containers, images and volumes on
// dockerd and tent give the same counts in `system df`, and `system
// prune` removes the same things.
func TestSystemDFAndPrune(t *testing.T) {
	d, e, engines, images := startPair(t)
	extra := filepath.Join(t.TempDir(), "extra.tar")
	root := filepath.Join(t.TempDir(), "root")
	testutil.BusyboxRootfs(t, root)
	if out, err := exec.Command("sh", "-c", "echo extra > "+root+"/extra && tar -C "+root+" -cf "+extra+" .").CombinedOutput(); err != nil {
		t.Fatalf("%v %s", err, out)
	}
	for name, en := range engines {
		en.must(t, "import", extra, "extra:1")
		en.must(t, "run", "-d", "--name", "keep", "--network", "none", "-v", "kept:/kept", images[name], "sleep", "1000")
		en.must(t, "run", "--name", "gone", "--network", "none", images[name], "dd", "if=/dev/zero", "of=/f", "bs=1k", "count=1024")
		en.must(t, "run", "--name", "anon", "--network", "none", "-v", "/data", images[name], "true")
		en.must(t, "rm", "anon") // its anonymous volume stays
	}
	if got, want := dfCounts(t, &e.dockerEngine), dfCounts(t, d); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("system df:\ntent   %q\ndocker %q", got, want)
	}
	if out := e.must(t, "system", "df", "--format", "{{.Type}} {{.Size}}"); !strings.Contains(out, "Containers 1.04") && !strings.Contains(out, "Containers 1.05") {
		t.Errorf("a container that wrote 1 MiB: %s", out)
	}
	if out := e.must(t, "system", "df", "-v"); !strings.Contains(out, "Images space usage") || !strings.Contains(out, "kept") || !strings.Contains(out, "gone") {
		t.Errorf("system df -v:\n%s", out)
	}

	for name, en := range engines {
		out := en.must(t, "system", "prune", "-f")
		if !strings.Contains(out, "Deleted Containers:") || !strings.Contains(out, "Total reclaimed space:") {
			t.Errorf("%s: system prune:\n%s", name, out)
		}
		if ps := strings.Fields(en.must(t, "ps", "-a", "--format", "{{.Names}}")); len(ps) != 1 || ps[0] != "keep" {
			t.Errorf("%s: after system prune: %v", name, ps)
		}
		en.must(t, "system", "prune", "-f", "-a", "--volumes")
		if imgs := en.must(t, "images", "--format", "{{.Repository}}"); strings.Contains(imgs, "extra") {
			t.Errorf("%s: prune -a left an unused image:\n%s", name, imgs)
		}
		if vols := strings.Fields(en.must(t, "volume", "ls", "-q")); len(vols) != 1 || vols[0] != "kept" {
			t.Errorf("%s: prune --volumes left %v, want the used volume only", name, vols)
		}
	}
	if got, want := dfCounts(t, &e.dockerEngine), dfCounts(t, d); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("system df after the prunes:\ntent   %q\ndocker %q", got, want)
	}

	t.Run("tent CLI", func(t *testing.T) {
		tent := func(args ...string) (string, string, int) {
			return capture(t, exec.Command(tentBin(), append([]string{"-H", e.host}, args...)...), nil)
		}
		out, errOut, code := tent("system", "df")
		if code != 0 || !strings.HasPrefix(out, "TYPE") || !strings.Contains(out, "Local Volumes") {
			t.Errorf("tent system df: %d %q %s", code, out, errOut)
		}
		e.must(t, "run", "--name", "gone2", "--network", "none", "busybox", "true")
		out, errOut, code = tent("system", "prune", "-f")
		if code != 0 || !strings.Contains(out, "Deleted Containers:") {
			t.Errorf("tent system prune: %d %q %s", code, out, errOut)
		}
	})
}

// TestLogDriverNone: output reaches an attached client, nothing is kept,
// and logs says so, as with dockerd.
func TestLogDriverNone(t *testing.T) {
	_, _, engines, images := startPair(t)
	for name, en := range engines {
		if out := en.must(t, "run", "--name", "quiet", "--network", "none", "--log-driver", "none", images[name], "echo", "hi"); out != "hi\n" {
			t.Errorf("%s: attached output %q", name, out)
		}
		if out, code := en.run("logs", "quiet"); code == 0 || !strings.Contains(out, "configured logging driver does not support reading") {
			t.Errorf("%s: logs of a none-driver container: %d %q", name, code, out)
		}
		if out := en.must(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}}|{{.LogPath}}", "quiet"); out != "none|\n" {
			t.Errorf("%s: inspect %q", name, out)
		}
	}
}

// TestLogsFollowAcrossRotation: `logs -f` from the start of a container
// whose log rotates every few hundred lines sees every line once, in
// order: with json-file, json-file with the rotated files gzipped, and
// the local driver (gzipped by default).
func TestLogsFollowAcrossRotation(t *testing.T) {
	e := startTent(t)
	const lines = 3000
	for i, tc := range []struct {
		opts  []string
		files string // the container's log files, under its directory
	}{
		{[]string{"--log-opt", "max-size=20k", "--log-opt", "max-file=5"}, "*-json.log.*"},
		{[]string{"--log-opt", "max-size=20k", "--log-opt", "max-file=5", "--log-opt", "compress=true"}, "*-json.log.*.gz"},
		{[]string{"--log-driver", "local", "--log-opt", "max-size=20k"}, "local-logs/container.log.*.gz"},
	} {
		name := fmt.Sprintf("chatty%d", i)
		e.must(t, append(append([]string{"run", "-d", "--name", name, "--network", "none"}, tc.opts...), "busybox", "sh", "-c",
			fmt.Sprintf("sleep 1; i=0; while [ $i -lt %d ]; do echo line $i; i=$((i+1)); [ $((i %% 20)) -eq 0 ] && usleep 5000; done", lines))...)
		out := e.must(t, "logs", "-f", name)
		got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(got) != lines {
			t.Errorf("%v: logs -f gave %d lines of %d", tc.opts, len(got), lines)
			continue
		}
		for i, l := range got {
			if l != fmt.Sprintf("line %d", i) {
				t.Errorf("%v: line %d is %q", tc.opts, i, l)
				break
			}
		}
		id := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", name))
		if files, _ := filepath.Glob(filepath.Join(e.dir, "data", "containers", id, tc.files)); len(files) < 1 {
			t.Errorf("%v: no rotated log files %s: the test tested nothing", tc.opts, tc.files)
		}
	}
}

// TestLogDriverLocal: docker's local driver, against dockerd's: what it
// kept reads back (the last lines, in order, across its gzipped rotated
// files), inspect shows the driver and its options and no LogPath; a
// daemon's default driver and options go to containers that set none.
func TestLogDriverLocal(t *testing.T) {
	_, e, engines, images := startPair(t)
	const lines = 2000
	for name, en := range engines {
		en.must(t, "run", "--name", "loc", "--network", "none", "--log-driver", "local", "--log-opt", "max-size=10k", "--log-opt", "max-file=3",
			images[name], "sh", "-c", fmt.Sprintf("i=0; while [ $i -lt %d ]; do echo line $i of the local log; i=$((i+1)); done", lines))
		got := strings.Split(strings.TrimSuffix(en.must(t, "logs", "loc"), "\n"), "\n")
		if len(got) < 200 || len(got) >= lines {
			t.Errorf("%s: logs gave %d lines: want the last few files' worth of %d", name, len(got), lines)
		}
		for i, l := range got {
			if want := fmt.Sprintf("line %d of the local log", lines-len(got)+i); l != want {
				t.Errorf("%s: line %d of logs is %q, want %q", name, i, l, want)
				break
			}
		}
		if out := en.must(t, "logs", "--tail", "1", "loc"); out != fmt.Sprintf("line %d of the local log\n", lines-1) {
			t.Errorf("%s: logs --tail 1: %q", name, out)
		}
		if out := en.must(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}|{{.LogPath}}", "loc"); out != `local {"max-file":"3","max-size":"10k"}|`+"\n" {
			t.Errorf("%s: inspect: %q", name, out)
		}
		out, code := en.run("run", "--rm", "--network", "none", "--log-driver", "local", "--log-opt", "labels=a", images[name], "true")
		if code == 0 || !strings.Contains(out, "unknown log opt 'labels'") {
			t.Errorf("%s: an option the local driver does not take: %d %q", name, code, out)
		}
	}
	id := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "loc"))
	if files, _ := filepath.Glob(filepath.Join(e.dir, "data", "containers", id, "local-logs", "*")); len(files) != 3 {
		t.Errorf("tent's local log files: %v, want container.log and two gzipped", files)
	}

	e.flags = []string{"--log-driver", "local", "--log-opt", "max-size=1m"}
	e.stop()
	e.start()
	e.must(t, "create", "--name", "dflt", "--network", "none", "busybox", "true")
	e.must(t, "create", "--name", "own", "--network", "none", "--log-driver", "json-file", "busybox", "true")
	if out := e.must(t, "inspect", "-f", "{{.HostConfig.LogConfig.Type}} {{json .HostConfig.LogConfig.Config}}", "dflt", "own"); out != "local {\"max-size\":\"1m\"}\njson-file {}\n" {
		t.Errorf("the daemon's default log driver: %q", out)
	}
}
