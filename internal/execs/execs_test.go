package execs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/task"
)

// fakeTask runs execs that end at once with code; only what execs uses
// is there.
type fakeTask struct {
	task.Task
	code    int
	failure error
	mu      sync.Mutex
	ran     []*specs.Process
	states  []task.ExecState
}

func (f *fakeTask) Spec(context.Context) (*specs.Spec, error) {
	return &specs.Spec{Process: &specs.Process{Args: []string{"init"}, Env: []string{"PATH=/bin", "A=1"}, Cwd: "/"}}, nil
}

func (f *fakeTask) Exec(_ context.Context, id string, p *specs.Process, _ task.ExecOpts) (task.ExecStream, error) {
	if f.failure != nil {
		return nil, f.failure
	}
	f.mu.Lock()
	f.ran = append(f.ran, p)
	f.mu.Unlock()
	return &stream{Reader: strings.NewReader("")}, nil
}

func (f *fakeTask) ExecWait(context.Context, string) (task.ExecState, error) {
	return task.ExecState{ExitCode: f.code}, nil
}

func (f *fakeTask) Execs(context.Context) ([]task.ExecState, error) { return f.states, nil }

type stream struct{ io.Reader }

func (*stream) Write(p []byte) (int, error) { return len(p), nil }
func (*stream) Close() error                { return nil }
func (*stream) CloseWrite() error           { return nil }
func (*stream) Pid() int                    { return 4242 }

type fakeContainers struct {
	targets map[string]Target
	mu      sync.Mutex
	events  []string
}

func (f *fakeContainers) Target(ref string) (Target, error) {
	t, ok := f.targets[ref]
	if !ok {
		return Target{}, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return t, nil
}

func (f *fakeContainers) Event(id string, action events.Action, attrs map[string]string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.events = append(f.events, string(action))
}

func TestCreateRefusals(t *testing.T) {
	m := New(&fakeContainers{targets: map[string]Target{"paused": {ID: "p", Running: true, Paused: true}, "stopped": {ID: "s"}, "up": {ID: "u", Running: true}}})
	for _, c := range []struct {
		ref  string
		cmd  []string
		want error
	}{{"paused", []string{"true"}, errdefs.ErrConflict}, {"stopped", []string{"true"}, errdefs.ErrConflict},
		{"up", nil, errdefs.ErrInvalidArgument}, {"nosuch", []string{"true"}, errdefs.ErrNotFound}} {
		if _, err := m.ExecCreate(c.ref, container.ExecCreateRequest{Cmd: c.cmd}); !errors.Is(err, c.want) {
			t.Errorf("%s %v: %v, want %v", c.ref, c.cmd, err, c.want)
		}
	}
	if _, err := m.ExecInspect("nosuch"); !errdefs.IsNotFound(err) {
		t.Errorf("inspect of no exec: %v", err)
	}
}

func TestStartRunsAndRecords(t *testing.T) {
	tk := &fakeTask{code: 3}
	cs := &fakeContainers{targets: map[string]Target{"c": {ID: "c", Running: true, Task: tk, Pid: 1}}}
	m := New(cs)
	id, err := m.ExecCreate("c", container.ExecCreateRequest{Cmd: []string{"sh", "-c", "exit 3"}, Env: []string{"A=2"}, WorkingDir: "/tmp", AttachStdout: true})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	closed := false
	if err := m.ExecStart(id, false, false, nil, &out, func() { closed = true }); err != nil {
		t.Fatal(err)
	}
	if !closed {
		t.Error("the stream was not closed at the end")
	}
	ins, err := m.ExecInspect(id)
	if err != nil {
		t.Fatal(err)
	}
	if ins.Running || ins.ExitCode == nil || *ins.ExitCode != 3 || ins.Pid != 4242 || ins.ContainerID != "c" || ins.ProcessConfig.Entrypoint != "sh" {
		t.Errorf("inspect: %+v", ins)
	}
	p := tk.ran[0]
	if !slices.Equal(p.Args, []string{"sh", "-c", "exit 3"}) || !slices.Equal(p.Env, []string{"PATH=/bin", "A=2"}) || p.Cwd != "/tmp" {
		t.Errorf("the exec's process: %+v", p)
	}
	// exec_die follows the recorded end.
	var evs []string
	for range 100 {
		cs.mu.Lock()
		evs = slices.Clone(cs.events)
		cs.mu.Unlock()
		if len(evs) == 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if !slices.Equal(evs, []string{"exec_create", "exec_start", "exec_die"}) {
		t.Errorf("events: %v", evs)
	}
	if err := m.ExecStart(id, true, false, nil, io.Discard, func() {}); !errdefs.IsConflict(err) {
		t.Errorf("a second start: %v", err)
	}
}

func TestStartFailureCode(t *testing.T) {
	for err, want := range map[error]int{
		fmt.Errorf("exec: %w", errdefs.ErrNotFound):   127,
		fmt.Errorf("exec: %w", errdefs.ErrPermission): 126,
		errors.New("something else"):                  128,
	} {
		tk := &fakeTask{failure: err}
		m := New(&fakeContainers{targets: map[string]Target{"c": {ID: "c", Running: true, Task: tk}}})
		id, _ := m.ExecCreate("c", container.ExecCreateRequest{Cmd: []string{"x"}})
		var out bytes.Buffer
		if err := m.ExecStart(id, false, true, nil, &out, func() {}); err != nil {
			t.Fatal(err)
		}
		ins, _ := m.ExecInspect(id)
		if ins.ExitCode == nil || *ins.ExitCode != want || !strings.Contains(out.String(), "OCI runtime exec failed") {
			t.Errorf("%v: exit %v, output %q; want %d and the cause", err, ins.ExitCode, out.String(), want)
		}
	}
}

func TestRestoreAndForget(t *testing.T) {
	meta, _ := json.Marshal(container.ExecCreateRequest{Cmd: []string{"echo", "hi"}})
	tk := &fakeTask{states: []task.ExecState{{ID: "e1", Pid: 7, ExitCode: 5, Meta: meta}, {ID: "health-x", Meta: []byte("{}")}}}
	m := New(&fakeContainers{})
	if err := m.Restore("c", tk); err != nil {
		t.Fatal(err)
	}
	ins, err := m.ExecInspect("e1")
	if err != nil || ins.ExitCode == nil || *ins.ExitCode != 5 || ins.Running || ins.ContainerID != "c" {
		t.Errorf("a restored exec: %+v %v", ins, err)
	}
	if _, err := m.ExecInspect("health-x"); err == nil {
		t.Error("an exec of no command (not the engine's) was taken back")
	}
	m.Forget("c")
	if _, err := m.ExecInspect("e1"); !errdefs.IsNotFound(err) {
		t.Errorf("after Forget: %v", err)
	}
}
