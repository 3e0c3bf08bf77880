package containers

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/testutil"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	return NewStore(testutil.BoltDB(t))
}

func record(id, name string) Record {
	return Record{ID: id, Name: name, Created: time.Now(), Config: &container.Config{}, HostConfig: &container.HostConfig{},
		State: State{Status: container.StateCreated}}
}

func TestStoreFind(t *testing.T) {
	s := newStore(t)
	a, b := New(record("abc123"+strings.Repeat("0", 58), "web")), New(record("abd456"+strings.Repeat("0", 58), "db"))
	s.Add(a)
	s.Add(b)
	for ref, want := range map[string]*Container{a.ID: a, "web": a, "/db": b, "abc": a, "abd4": b} {
		if got, err := s.Get(ref); err != nil || got != want {
			t.Errorf("get %q: %v %v", ref, got, err)
		}
	}
	if _, err := s.Get("ab"); !errors.Is(err, errdefs.ErrInvalidArgument) || !strings.Contains(err.Error(), "multiple IDs found") {
		t.Errorf("an ambiguous prefix: %v", err)
	}
	if _, err := s.Get("zzz"); !errdefs.IsNotFound(err) || !strings.Contains(err.Error(), "No such container: zzz") {
		t.Errorf("a missing container: %v", err)
	}
	if _, err := s.Get(""); !errdefs.IsNotFound(err) {
		t.Errorf("an empty reference: %v", err)
	}
	if _, err := s.GetRunning("web"); !errdefs.IsConflict(err) {
		t.Errorf("get running of a created container: %v", err)
	}
	a.State.Status = container.StatePaused
	if c, err := s.GetRunning("web"); err != nil || c != a {
		t.Errorf("get running of a paused container: %v", err)
	} else {
		c.Mu.Unlock()
	}
	if all := s.All(); len(all) != 2 || all[0] != b {
		t.Errorf("all, newest first: %v", all)
	}
	s.Forget(a)
	if _, err := s.Get("web"); !errdefs.IsNotFound(err) || s.Has(a.ID) {
		t.Errorf("a forgotten container: %v", err)
	}
}

func TestStoreNames(t *testing.T) {
	s := newStore(t)
	name, err := s.ReserveName("/web", "id1")
	if err != nil || name != "web" {
		t.Fatalf("reserve /web: %q %v", name, err)
	}
	if _, err := s.ReserveName("web", "id2"); !errdefs.IsConflict(err) || !strings.Contains(err.Error(), `The container name "/web" is already in use by container "id1"`) {
		t.Errorf("a name in use: %v", err)
	}
	for _, bad := range []string{"-x", "a", "a b", "x/y"} {
		if _, err := s.ReserveName(bad, "id3"); !errors.Is(err, errdefs.ErrInvalidArgument) {
			t.Errorf("name %q: %v", bad, err)
		}
	}
	gen, err := s.ReserveName("", "id4")
	if err != nil || !strings.Contains(gen, "_") {
		t.Errorf("a generated name: %q %v", gen, err)
	}
	s.ReleaseName("web")
	c := New(record("id5", "web"))
	s.Add(c)
	old, err := s.Rename(c, "front")
	if err != nil || old != "web" || c.Name != "front" {
		t.Errorf("rename: %q %q %v", old, c.Name, err)
	}
	if _, err := s.ReserveName("web", "id6"); err != nil {
		t.Errorf("the old name is free again: %v", err)
	}
	if _, err := s.Rename(c, gen); !errdefs.IsConflict(err) || c.Name != "front" {
		t.Errorf("rename to a taken name: %v (name %q)", err, c.Name)
	}
}

func TestStoreRecords(t *testing.T) {
	s := newStore(t)
	c := New(record("id1", "web"))
	c.RestartCount, c.State.ExitCode = 3, 7
	if err := s.Save(c); err != nil {
		t.Fatal(err)
	}
	c2 := New(record("id2", "db"))
	if err := <-s.SaveAsync(c2); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteRecord("id2"); err != nil {
		t.Fatal(err)
	}
	recs, err := s.Load(func(id string, err error) { t.Errorf("record %s: %v", id, err) })
	if err != nil || len(recs) != 1 || recs[0].ID != "id1" || recs[0].RestartCount != 3 || recs[0].State.ExitCode != 7 {
		t.Errorf("load: %+v %v", recs, err)
	}
}

func TestRestartPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy            container.RestartPolicyMode
		max, count, code  int
		manual            bool
		afterExit, onBoot bool
	}{
		{container.RestartPolicyDisabled, 0, 0, 1, false, false, false},
		{container.RestartPolicyAlways, 0, 0, 0, false, true, true},
		{container.RestartPolicyAlways, 0, 0, 0, true, false, true}, // stopped by hand: back with the daemon
		{container.RestartPolicyUnlessStopped, 0, 0, 0, false, true, true},
		{container.RestartPolicyUnlessStopped, 0, 0, 0, true, false, false},
		{container.RestartPolicyOnFailure, 0, 0, 0, false, false, false},
		{container.RestartPolicyOnFailure, 2, 1, 3, false, true, true},
		{container.RestartPolicyOnFailure, 2, 2, 3, false, false, false},
	} {
		c := New(record("id", "x"))
		c.HostConfig.RestartPolicy = container.RestartPolicy{Name: tc.policy, MaximumRetryCount: tc.max}
		c.RestartCount, c.State.ExitCode, c.ManuallyStopped = tc.count, tc.code, tc.manual
		c.State.Status = container.StateExited
		if got := c.ShouldRestart(); got != tc.afterExit {
			t.Errorf("%+v: restart after its exit %v", tc, got)
		}
		if got := c.RestartOnBoot(); got != tc.onBoot {
			t.Errorf("%+v: restart with the daemon %v", tc, got)
		}
	}
}

func TestWait(t *testing.T) {
	c := New(record("id", "x"))
	c.State.Status = container.StateRunning
	c.State.StartedAt = time.Now()
	got := make(chan container.WaitResponse, 1)
	registered := make(chan struct{})
	go func() {
		r, _ := c.Wait(context.Background(), container.WaitConditionNotRunning, func() { close(registered) })
		got <- r
	}()
	<-registered
	select {
	case r := <-got:
		t.Fatalf("the wait ended while the container runs: %+v", r)
	case <-time.After(50 * time.Millisecond):
	}
	c.Mu.Lock()
	c.State = State{Status: container.StateExited, ExitCode: 3, Error: "oom", StartedAt: c.State.StartedAt, FinishedAt: time.Now()}
	c.EndRun()
	c.Mu.Unlock()
	if r := <-got; r.StatusCode != 3 || r.Error == nil || r.Error.Message != "oom" {
		t.Errorf("wait: %+v", r)
	}
	// Not running: answered at once; the next exit and removal wait.
	if r, err := c.Wait(context.Background(), container.WaitConditionNotRunning, func() {}); err != nil || r.StatusCode != 3 {
		t.Errorf("wait of a stopped container: %+v %v", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.Wait(ctx, container.WaitConditionRemoved, func() {}); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("wait for removal: %v", err)
	}
}

// TestAttachBeforeStart: an attachment to a stopped container waits for
// its next start; one refused for a paused or removing container.
func TestAttachBeforeStart(t *testing.T) {
	c := New(record("id", "x"))
	c.State.Status = container.StateExited
	a, err := c.Attach(false, true, true, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan struct{})
	go func() {
		a.Stream(context.Background(), strings.NewReader(""), nil, func() { close(out) })
	}()
	c.Mu.Lock()
	c.ClosePending() // the start failed: the client's stream ends
	c.Mu.Unlock()
	select {
	case <-out:
	case <-time.After(5 * time.Second):
		t.Fatal("a pending attachment was not ended")
	}
	for _, st := range []container.ContainerState{container.StatePaused, container.StateRemoving, container.StateDead} {
		c.State.Status = st
		if _, err := c.Attach(false, true, true, nil); !errdefs.IsConflict(err) {
			t.Errorf("attach to a %s container: %v", st, err)
		}
	}
}

// A start does not wait for its record's write: the writes asked for
// after it (the exit's, the removal) must still land after it.
func TestStoreWritesInOrder(t *testing.T) {
	s := newStore(t)
	for i := range 50 {
		c := New(record("ordered", "o"))
		c.State.Status = container.StateRunning
		started := s.SaveAsync(c)
		c.State.Status, c.State.ExitCode = container.StateExited, i
		exited := s.SaveAsync(c)
		if i%2 == 1 {
			if err := s.DeleteRecord(c.ID); err != nil {
				t.Fatal(err)
			}
		}
		if err := errors.Join(<-started, <-exited); err != nil {
			t.Fatal(err)
		}
		recs, err := s.Load(func(id string, err error) { t.Errorf("record %s: %v", id, err) })
		switch {
		case err != nil:
			t.Fatal(err)
		case i%2 == 1 && len(recs) != 0:
			t.Fatalf("round %d: a removed record is back: %+v", i, recs[0].State)
		case i%2 == 0 && (len(recs) != 1 || recs[0].State.Status != container.StateExited || recs[0].State.ExitCode != i):
			t.Fatalf("round %d: the last write did not win: %+v", i, recs)
		}
	}
	if len(s.lastWrite) != 0 {
		t.Errorf("writes still tracked after all ended: %d", len(s.lastWrite))
	}
}
