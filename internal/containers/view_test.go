package containers

import (
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/storage"
	"github.com/tent-project/tent/internal/backend"
)

// engine is a containers.Engine of fixed answers.
type engine struct{}

func (engine) Driver() string { return "overlay2" }
func (engine) GraphDriver(*Container) *storage.DriverData {
	return &storage.DriverData{Name: "overlay2"}
}
func (engine) FilesDir(c *Container) string             { return "/data/" + c.ID }
func (engine) LogPath(c *Container) string              { return "/data/" + c.ID + "/log" }
func (engine) Mounts(*Container) []container.MountPoint { return []container.MountPoint{} }
func (engine) NetworkSettings(*Container) *container.NetworkSettings {
	return &container.NetworkSettings{}
}
func (engine) Sizes(*Container) (int64, int64) { return 10, 110 }
func (engine) ImageID(string) string           { return "" }
func (engine) DefaultRuntime() string          { return "tent" }

func TestInspectAndList(t *testing.T) {
	s := newStore(t)
	run := New(record("aaaa", "run"))
	run.State = State{Status: container.StateRunning, Pid: 42, StartedAt: time.Now()}
	run.Config.Labels = map[string]string{"tier": "web"}
	stopped := New(record("bbbb", "stopped"))
	stopped.Created = run.Created.Add(time.Second)
	s.Add(run)
	s.Add(stopped)

	r, err := s.Inspect("run", true, engine{})
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "/run" || !r.State.Running || r.State.Pid != 42 || r.HostConfig.Runtime != "tent" ||
		r.HostConfig.NetworkMode != "default" || r.HostConfig.LogConfig.Type != "json-file" ||
		r.HostsPath != "/data/aaaa/hosts" || *r.SizeRw != 10 || *r.SizeRootFs != 110 ||
		r.State.FinishedAt != "0001-01-01T00:00:00Z" {
		t.Errorf("inspect: %+v %+v", r, r.State)
	}
	names := func(o backend.ListOpts) []string {
		l, err := s.List(o, engine{})
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range l {
			out = append(out, c.Names[0])
		}
		return out
	}
	if got := names(backend.ListOpts{}); len(got) != 1 || got[0] != "/run" {
		t.Errorf("ps: %v", got)
	}
	if got := names(backend.ListOpts{All: true}); len(got) != 2 || got[0] != "/stopped" {
		t.Errorf("ps -a (newest first): %v", got)
	}
	if got := names(backend.ListOpts{All: true, Filters: map[string][]string{"label": {"tier=web"}}}); len(got) != 1 || got[0] != "/run" {
		t.Errorf("ps -a --filter label: %v", got)
	}
	if got := names(backend.ListOpts{All: true, Filters: map[string][]string{"before": {"stopped"}}}); len(got) != 1 || got[0] != "/run" {
		t.Errorf("ps -a --filter before: %v", got)
	}
	if _, err := s.List(backend.ListOpts{Filters: map[string][]string{"colour": {"red"}}}, engine{}); err == nil {
		t.Error("an unknown filter was taken")
	}
}
