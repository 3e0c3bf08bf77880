package integration

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/testutil"
)

// binDir holds tent, tentd, tent-runtime and tent-monitor: $TENT_BIN (set by make test), or a
// fresh build made by TestMain.
var binDir string

func TestMain(m *testing.M) {
	binDir = os.Getenv("TENT_BIN")
	if binDir == "" {
		tmp, err := os.MkdirTemp("", "tent-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, c := range []string{"tent", "tentd", "tent-runtime", "tent-monitor"} {
			flags := "-E=github.com/tent-project/tent/internal/nsenter.Entry"
			if c == "tent" { // the client starts no container process
				flags = ""
			}
			cmd := exec.Command("go", "build", "-ldflags", flags, "-o", filepath.Join(tmp, c), "../../cmd/"+c)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if out, err := cmd.CombinedOutput(); err != nil {
				fmt.Fprintf(os.Stderr, "build %s: %v\n%s", c, err, out)
				os.Exit(1)
			}
		}
		binDir = tmp
		code := m.Run()
		os.RemoveAll(tmp)
		os.Exit(code)
	}
	os.Exit(m.Run())
}

func runtimeBin() string { return filepath.Join(binDir, "tent-runtime") }

// result is what a command left: its output and exit status.
type result struct {
	Stdout, Stderr string
	Code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
}

// rt is tent-runtime with a state root of the test's own.
type rt struct {
	t    *testing.T
	root string
}

// newRT gives the test a runtime whose containers are all force-deleted
// when the test ends.
func newRT(t *testing.T) *rt {
	t.Helper()
	testutil.RequiresRoot(t)
	r := &rt{t: t, root: t.TempDir()}
	t.Cleanup(func() {
		out := r.run("", nil, "list", "-q")
		for _, id := range strings.Fields(out.Stdout) {
			r.run("", nil, "delete", "--force", id)
		}
	})
	return r
}

// run runs tent-runtime with args in dir, stdin from in.
func (r *rt) run(dir string, in io.Reader, args ...string) result {
	r.t.Helper()
	cmd := exec.Command(runtimeBin(), append([]string{"--root", r.root}, args...)...)
	cmd.Dir = dir
	cmd.Stdin = in
	// Files, not pipes: create hands its stdio to the container, as runc
	// does, and a pipe would stay open for as long as the container runs.
	out, errf := tempFile(r.t), tempFile(r.t)
	cmd.Stdout, cmd.Stderr = out, errf
	err := cmd.Run()
	res := result{Stdout: readAll(r.t, out), Stderr: readAll(r.t, errf)}
	if ee, ok := err.(*exec.ExitError); ok {
		res.Code = ee.ExitCode()
	} else if err != nil {
		r.t.Fatalf("tent-runtime %v: %v", args, err)
	}
	return res
}

func tempFile(t *testing.T) *os.File {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func readAll(t *testing.T, f *os.File) string {
	b, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// ok runs a command that must succeed and returns its stdout.
func (r *rt) ok(args ...string) string {
	r.t.Helper()
	res := r.run("", nil, args...)
	if res.Code != 0 {
		r.t.Fatalf("tent-runtime %v: %s", args, res)
	}
	return res.Stdout
}

// state returns the OCI state of id.
func (r *rt) state(id string) map[string]any {
	r.t.Helper()
	var st map[string]any
	if err := json.Unmarshal([]byte(r.ok("state", id)), &st); err != nil {
		r.t.Fatalf("state %s: %v", id, err)
	}
	return st
}

// waitStatus polls until id has status want.
func (r *rt) waitStatus(id, want string) {
	r.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		// The container may not exist yet: a run started in the background.
		var st map[string]any
		if res := r.run("", nil, "state", id); res.Code == 0 {
			_ = json.Unmarshal([]byte(res.Stdout), &st)
		}
		if st["status"] == want {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("container %s: status %v, want %s", id, st["status"], want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cgroupDirs lists the directories cgroup path would occupy on this host.
func cgroupDirs(path string) []string {
	if cgroups.Unified() {
		return []string{filepath.Join("/sys/fs/cgroup", path)}
	}
	var dirs []string
	for _, c := range []string{"memory", "pids", "cpu", "freezer", "devices"} {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", c, path))
	}
	return dirs
}

// assertGone checks that nothing of container id is left: state
// directory and cgroup.
func (r *rt) assertGone(id, cgroupPath string) {
	r.t.Helper()
	if _, err := os.Stat(filepath.Join(r.root, id)); !os.IsNotExist(err) {
		r.t.Errorf("state directory of %s left behind (%v)", id, err)
	}
	for _, d := range cgroupDirs(cgroupPath) {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			r.t.Errorf("cgroup %s left behind", d)
		}
	}
}
