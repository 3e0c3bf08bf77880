// Package tasktest is the conformance suite of package task: one set of
// tests that every task backend runs from its own test (as containerd's
// snapshotters share one suite), so that a second backend is held to the
// behaviour of the first. Each test makes a busybox root, creates a task
// through the backend, and checks what the container's program did: its
// output, its exit status, its processes.
package tasktest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/oci"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// CgroupParent holds the suite's containers (a backend's spares may wait
// there too: it is removed once the test and the backend have ended).
const CgroupParent = "/tent-tasktest"

const cgroupParent = CgroupParent

// Run runs the suite against the backend rt.
func Run(t *testing.T, rt task.Runtime) {
	testutil.RequiresRoot(t)
	t.Cleanup(func() {
		testutil.RemoveCgroupParent(cgroupParent)
	})
	for _, tc := range []struct {
		name string
		f    func(*testing.T, task.Runtime)
	}{
		{"ExitStatusAndLog", testExitStatusAndLog},
		{"KillAndState", testKillAndState},
		{"PauseResume", testPauseResume},
		{"PauseRightAfterStart", testPauseRightAfterStart},
		{"Exec", testExec},
		{"AttachBeforeStart", testAttachBeforeStart},
		{"Connect", testConnect},
		{"CreateFailureLeavesNothing", testCreateFailure},
		{"WireDuringCreate", testWire},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.f(t, rt) })
	}
}

// fixture is one task's files.
type fixture struct {
	id    string
	paths task.Paths
	log   string
	root  string // the busybox root the task's mount binds
	wire  func(pid int) error
}

func newFixture(t *testing.T, name string) *fixture {
	dir := t.TempDir()
	f := &fixture{
		id:    fmt.Sprintf("tasktest-%s-%d", strings.ToLower(name), time.Now().UnixNano()%1e6),
		paths: task.Paths{Dir: filepath.Join(dir, "run"), ExitFile: filepath.Join(dir, "exit.json")},
		log:   filepath.Join(dir, "log.json"),
		root:  filepath.Join(dir, "image"),
	}
	testutil.BusyboxRootfs(t, f.root)
	return f
}

// create makes the task of f running args, edited by edit.
func (f *fixture) create(t *testing.T, rt task.Runtime, args []string, io task.IO, edit func(*specs.Spec)) (task.Task, error) {
	t.Helper()
	s := oci.DefaultSpec(false)
	s.Process.Terminal = false
	s.Process.Args = args
	s.Linux.CgroupsPath = cgroupParent + "/" + f.id
	if edit != nil {
		edit(s)
	}
	tk, err := rt.Create(context.Background(), f.id, task.CreateOpts{
		Paths:   f.paths,
		Rootfs:  []task.Mount{{Type: "bind", Source: f.root, Options: []string{"rbind"}}},
		Prepare: func(string) (*specs.Spec, error) { return s, nil },
		IO:      io,
		Log:     task.Log{Path: f.log},
		Wire:    f.wire,
	})
	if err == nil {
		t.Cleanup(func() {
			tk.Kill(context.Background(), syscall.SIGKILL, true)
			tk.Wait(context.Background())
			tk.Delete(context.Background())
		})
	}
	return tk, err
}

func (f *fixture) mustCreate(t *testing.T, rt task.Runtime, args ...string) task.Task {
	t.Helper()
	tk, err := f.create(t, rt, args, task.IO{}, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return tk
}

// wait waits for tk's end, for at most ten seconds.
func wait(t *testing.T, tk task.Task) task.Exit {
	t.Helper()
	type result struct {
		exit task.Exit
		gone <-chan struct{}
		err  error
	}
	ch := make(chan result, 1)
	go func() {
		e, gone, err := tk.Wait(context.Background())
		ch <- result{e, gone, err}
	}()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("wait: %v", r.err)
		}
		<-r.gone
		return r.exit
	case <-time.After(10 * time.Second):
		t.Fatal("the task did not end within 10s")
	}
	return task.Exit{}
}

// startRunning starts tk and waits until its program (named comm) runs
// as the container's PID 1, past the backend's own start-up: asked of
// the container itself, by an exec, so that a backend whose task is not
// a host process of the program (a VM) is held to the same.
func startRunning(t *testing.T, tk task.Task, comm string) task.State {
	t.Helper()
	ctx := context.Background()
	if err := tk.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for i := 0; ; i++ {
		var got string
		id := fmt.Sprintf("probe%d", i)
		if s, err := tk.Exec(ctx, id, &specs.Process{Args: []string{"cat", "/proc/1/comm"}, Cwd: "/", Env: []string{"PATH=/bin"}},
			task.ExecOpts{Ephemeral: true}); err == nil {
			var out bytes.Buffer
			streams.Demux(&out, io.Discard, s)
			s.Close()
			tk.ExecWait(ctx, id)
			if got = out.String(); got == comm+"\n" {
				return state(t, tk)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the task's PID 1 runs %q, want %s", got, comm)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func state(t *testing.T, tk task.Task) task.State {
	t.Helper()
	st, err := tk.State(context.Background())
	if err != nil {
		t.Fatalf("state: %v", err)
	}
	return st
}

// mounted reports whether path is a mount point.
func mounted(path string) bool {
	b, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

func testExitStatusAndLog(t *testing.T, rt task.Runtime) {
	f := newFixture(t, "exit")
	tk := f.mustCreate(t, rt, "sh", "-c", "echo out; echo err >&2; exit 3")
	if st := state(t, tk); st.Status != task.Created || st.Pid <= 0 || st.Pid != tk.Pid() {
		t.Errorf("state after create: %+v (Pid() %d), want created with the task's pid", st, tk.Pid())
	}
	if err := tk.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, tk); e.Code != 3 || e.At.IsZero() {
		t.Errorf("exit %+v, want code 3 and a time", e)
	}
	entries, _, err := logfile.Read(f.log, logfile.JSONFile, logfile.ReadOpts{Tail: -1})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Stream+":"+e.Log)
	}
	if strings.Join(got, "") != "stdout:out\nstderr:err\n" && strings.Join(got, "") != "stderr:err\nstdout:out\n" {
		t.Errorf("log: %q, want the program's stdout and stderr", got)
	}
	if err := tk.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
	if mounted(filepath.Join(f.paths.Dir, "rootfs")) {
		t.Error("the root is still mounted after delete")
	}
}

func testKillAndState(t *testing.T, rt task.Runtime) {
	f := newFixture(t, "kill")
	tk := f.mustCreate(t, rt, "sleep", "1000")
	st := startRunning(t, tk, "sleep")
	if st.Status != task.Running {
		t.Fatalf("state after start: %+v", st)
	}
	pids, err := tk.Pids(context.Background())
	if err != nil || len(pids) != 1 || pids[0] != st.Pid {
		t.Errorf("pids %v (%v), want [%d]", pids, err, st.Pid)
	}
	stats, err := tk.Stats(context.Background())
	if err != nil || stats.Pids.Current < 1 || stats.Memory.Usage == 0 || stats.CPU.Total == 0 {
		t.Errorf("stats of a running sleep: %+v (%v); want its pids, memory and CPU time used", stats, err)
	}
	ro, canOpen := tk.(task.RootOpener)
	if canOpen {
		root, err := ro.OpenRoot(context.Background())
		if err != nil {
			t.Fatalf("open the root of a running task: %v", err)
		}
		var st unix.Stat_t
		if err := unix.Fstatat(int(root.Fd()), "bin/sleep", &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			t.Errorf("the opened root lacks the fixture's bin/sleep: %v", err)
		}
		root.Close()
	}
	if err := tk.Kill(context.Background(), syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, tk); e.Code != 137 {
		t.Errorf("exit code of a killed task %d, want 137", e.Code)
	}
	if canOpen {
		if root, err := ro.OpenRoot(context.Background()); err == nil {
			root.Close()
			t.Error("the root of an ended task opened")
		}
	}
}

func testPauseResume(t *testing.T, rt task.Runtime) {
	f := newFixture(t, "pause")
	tk := f.mustCreate(t, rt, "sleep", "1000")
	ctx := context.Background()
	startRunning(t, tk, "sleep")
	if err := tk.Pause(ctx); err != nil {
		t.Fatal(err)
	}
	if st := state(t, tk); st.Status != task.Paused {
		t.Errorf("state after pause: %s", st.Status)
	}
	if err := tk.Resume(ctx); err != nil {
		t.Fatal(err)
	}
	if st := state(t, tk); st.Status != task.Running {
		t.Errorf("state after resume: %s", st.Status)
	}
	tk.Kill(ctx, syscall.SIGKILL, false)
	wait(t, tk)
}

// testPauseRightAfterStart pauses a task the moment Start returns, while
// its first process may still be on its way to the program.
func testPauseRightAfterStart(t *testing.T, rt task.Runtime) {
	ctx := context.Background()
	for i := range 5 {
		f := newFixture(t, fmt.Sprintf("quickpause%d", i))
		tk := f.mustCreate(t, rt, "sleep", "1000")
		if err := tk.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := tk.Pause(ctx); err != nil {
			t.Fatalf("round %d: pause right after start: %v", i, err)
		}
		if st := state(t, tk); st.Status != task.Paused {
			t.Errorf("round %d: state %s, want paused", i, st.Status)
		}
		if err := tk.Resume(ctx); err != nil {
			t.Fatal(err)
		}
		tk.Kill(ctx, syscall.SIGKILL, false)
		wait(t, tk)
	}
}

func testExec(t *testing.T, rt task.Runtime) {
	f := newFixture(t, "exec")
	tk := f.mustCreate(t, rt, "sleep", "1000")
	ctx := context.Background()
	startRunning(t, tk, "sleep")
	s, err := tk.Exec(ctx, "e1", &specs.Process{Args: []string{"sh", "-c", "read x; echo in-exec $x $(cat /proc/1/comm); echo oops >&2; exit 5"},
		Cwd: "/", Env: []string{"PATH=/bin"}}, task.ExecOpts{Stdin: true, Meta: []byte(`{"mine":1}`)})
	if err != nil {
		t.Fatal(err)
	}
	if s.Pid() <= 0 {
		t.Errorf("exec pid %d", s.Pid())
	}
	io.WriteString(s, "hi\n")
	s.CloseWrite()
	var out, errOut bytes.Buffer
	if err := streams.Demux(&out, &errOut, s); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if out.String() != "in-exec hi sleep\n" || errOut.String() != "oops\n" {
		t.Errorf("exec output %q, stderr %q; want the container's view", out.String(), errOut.String())
	}
	st, err := tk.ExecWait(ctx, "e1")
	if err != nil || st.Running || st.ExitCode != 5 || string(st.Meta) != `{"mine":1}` {
		t.Errorf("exec state %+v (%v), want ended with 5 and its meta", st, err)
	}
	if _, err := tk.Exec(ctx, "e2", &specs.Process{Args: []string{"nosuchprogram"}, Cwd: "/"}, task.ExecOpts{}); err == nil ||
		!strings.Contains(err.Error(), "executable file not found") || !errdefs.IsNotFound(err) {
		t.Errorf("exec of a missing program: %v, want its cause, of class not found", err)
	}
	// A detached exec goes on without its stream and keeps its exit code.
	s, err = tk.Exec(ctx, "e3", &specs.Process{Args: []string{"sh", "-c", "sleep 0.3; exit 7"}, Cwd: "/", Env: []string{"PATH=/bin"}}, task.ExecOpts{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if list, err := tk.Execs(ctx); err != nil || len(list) != 2 {
		t.Errorf("execs %+v (%v), want e1 and e3", list, err)
	}
	if st, err := tk.ExecWait(ctx, "e3"); err != nil || st.ExitCode != 7 {
		t.Errorf("detached exec: %+v (%v), want exit 7", st, err)
	}
	tk.Kill(ctx, syscall.SIGKILL, false)
	wait(t, tk)
	// Once the task has ended, its execs are still known.
	if st, err := tk.ExecWait(ctx, "e1"); err != nil || st.ExitCode != 5 {
		t.Errorf("exec after the task's end: %+v (%v)", st, err)
	}
}

func testAttachBeforeStart(t *testing.T, rt task.Runtime) {
	f := newFixture(t, "attach")
	tk, err := f.create(t, rt, []string{"sh", "-c", "read line; echo got $line"}, task.IO{OpenStdin: true, StdinOnce: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := tk.Attach(ctx, task.AttachOpts{Stdin: true, Stdout: true, Stderr: true, BeforeStart: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := tk.Start(ctx); err != nil {
		t.Fatal(err)
	}
	io.WriteString(s, "hello\n")
	s.CloseWrite()
	var out, errOut bytes.Buffer
	if err := streams.Demux(&out, &errOut, s); err != nil {
		t.Fatal(err)
	}
	if out.String() != "got hello\n" {
		t.Errorf("attached output %q (stderr %q), want the answer to its stdin", out.String(), errOut.String())
	}
	if e := wait(t, tk); e.Code != 0 {
		t.Errorf("exit %d", e.Code)
	}
}

func testConnect(t *testing.T, rt task.Runtime) {
	f := newFixture(t, "connect")
	tk := f.mustCreate(t, rt, "sleep", "1000")
	ctx := context.Background()
	startRunning(t, tk, "sleep")
	// What a restarted engine does: find the task again and wait for it.
	again, err := rt.Connect(ctx, f.id, f.paths)
	if err != nil {
		t.Fatal(err)
	}
	if st := state(t, again); st.Status != task.Running || st.Pid != state(t, tk).Pid {
		t.Errorf("connected task's state %+v", st)
	}
	if err := again.Kill(ctx, syscall.SIGKILL, false); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, again); e.Code != 137 {
		t.Errorf("exit of the connected task %d, want 137", e.Code)
	}
	// Its exit is kept: a second engine reads it too.
	later, _ := rt.Connect(ctx, f.id, f.paths)
	if e := wait(t, later); e.Code != 137 {
		t.Errorf("exit read after the end %d, want 137", e.Code)
	}
}

func testCreateFailure(t *testing.T, rt task.Runtime) {
	f := newFixture(t, "fail")
	_, err := f.create(t, rt, []string{"nosuchprogram"}, task.IO{}, nil)
	if err == nil || !strings.Contains(err.Error(), `exec: "nosuchprogram": executable file not found in $PATH`) {
		t.Fatalf("create of a missing program: %v", err)
	}
	assertNothingLeft(t, f)
}

// assertNothingLeft checks that a failed create of f left nothing.
func assertNothingLeft(t *testing.T, f *fixture) {
	t.Helper()
	if mounted(filepath.Join(f.paths.Dir, "rootfs")) {
		t.Error("a failed create left the root mounted")
	}
	for _, d := range []string{"memory", "pids"} {
		if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", d, cgroupParent, f.id)); err == nil {
			t.Errorf("a failed create left its %s cgroup", d)
		}
	}
	var st unix.Stat_t
	if unix.Stat(f.paths.ExitFile, &st) == nil {
		t.Error("a failed create left an exit file")
	}
}

// testWire: a backend that wires the network during Create
// (task.CreateOpts.Wire) does it with the init's pid, before the spec's
// sysctls are applied (a sysctl of the interface it made works), and a
// wiring error fails the create with that error and leaves nothing. A
// backend that cannot leaves Wire uncalled.
func testWire(t *testing.T, rt task.Runtime) {
	var pids []int
	f := newFixture(t, "wire")
	f.wire = func(pid int) error {
		pids = append(pids, pid)
		return addDummy(pid, "tentw0")
	}
	tk, err := f.create(t, rt, []string{"true"}, task.IO{}, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	pid := tk.Pid()
	if err := tk.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	wait(t, tk)
	if len(pids) == 0 {
		t.Skip("this backend wires after Create")
	}
	if len(pids) != 1 || pids[0] != pid {
		t.Errorf("wired %v, want once, with the task's pid %d", pids, pid)
	}

	f = newFixture(t, "wiresysctl")
	f.wire = func(pid int) error { return addDummy(pid, "tentw0") }
	tk, err = f.create(t, rt, []string{"cat", "/proc/sys/net/ipv4/conf/tentw0/rp_filter"}, task.IO{}, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.conf.tentw0.rp_filter": "2"}
	})
	if err != nil {
		t.Fatalf("create with a sysctl of the wired interface: %v", err)
	}
	if err := tk.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e := wait(t, tk); e.Code != 0 {
		t.Errorf("exit %d", e.Code)
	}
	if b, _ := os.ReadFile(f.log); !strings.Contains(string(b), `"log":"2\n"`) {
		t.Errorf("the container read %s, want the sysctl's 2", b)
	}

	f = newFixture(t, "wirefails")
	broken := errors.New("the network broke")
	f.wire = func(int) error { return broken }
	if _, err := f.create(t, rt, []string{"true"}, task.IO{}, nil); !errors.Is(err, broken) {
		t.Fatalf("create with a wiring error: %v, want that error", err)
	}
	assertNothingLeft(t, f)
}

// addDummy adds an interface to the network namespace of pid (a veth
// pair: the dummy driver may be missing).
func addDummy(pid int, name string) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: name + "p"})
}
