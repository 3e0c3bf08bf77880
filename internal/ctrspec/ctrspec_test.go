package ctrspec

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/task/vmtask"
	"github.com/tent-project/tent/internal/testutil"
)

// newMaker is a Maker over an empty container store, with its files in a
// temporary directory; no network is needed by containers without
// endpoints.
func newMaker(t *testing.T) *Maker {
	t.Helper()
	dir := t.TempDir()
	files := func(id string) string { return filepath.Join(dir, id) }
	return &Maker{Containers: containers.NewStore(testutil.BoltDB(t)), CgroupParent: "/tent", InitPath: "/usr/bin/tini",
		FilesDir: files, RunDir: files}
}

// add records a stopped container with host config hc.
func add(t *testing.T, m *Maker, id, name string, hc *container.HostConfig) *containers.Container {
	t.Helper()
	c := containers.New(containers.Record{ID: strings.Repeat(id, 64), Name: name, Path: "/bin/sh", Args: []string{"-c", "true"},
		Config: &container.Config{Hostname: "box", Env: []string{"A=1"}}, HostConfig: hc})
	if err := os.MkdirAll(m.FilesDir(c.ID), 0o700); err != nil {
		t.Fatal(err)
	}
	m.Containers.Add(c)
	return c
}

func TestSpec(t *testing.T) {
	m := newMaker(t)
	yes := true
	c := add(t, m, "a", "web", &container.HostConfig{Init: &yes, ExtraHosts: []string{"db.local:10.1.2.3"}})
	s, err := m.Spec(c, "/nonexistent-root", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Process.Args, " "); got != "/sbin/docker-init -- /bin/sh -c true" {
		t.Errorf("args with --init: %q", got)
	}
	if s.Hostname != "box" || !strings.HasPrefix(s.Linux.CgroupsPath, "/tent") {
		t.Errorf("hostname %q, cgroups path %q", s.Hostname, s.Linux.CgroupsPath)
	}
	bound := map[string]string{}
	for _, mt := range s.Mounts {
		bound[mt.Destination] = mt.Source
	}
	if bound["/sbin/docker-init"] != m.InitPath {
		t.Errorf("init bound from %q", bound["/sbin/docker-init"])
	}
	for _, f := range []string{"hostname", "hosts", "resolv.conf"} {
		if bound["/etc/"+f] != filepath.Join(m.FilesDir(c.ID), f) {
			t.Errorf("/etc/%s bound from %q", f, bound["/etc/"+f])
		}
	}
	hosts, err := os.ReadFile(filepath.Join(m.FilesDir(c.ID), "hosts"))
	if err != nil || !strings.Contains(string(hosts), "10.1.2.3\tdb.local") {
		t.Errorf("hosts file (an --add-host entry): %q %v", hosts, err)
	}
	if name, _ := os.ReadFile(filepath.Join(m.FilesDir(c.ID), "hostname")); string(name) != "box\n" {
		t.Errorf("hostname file: %q", name)
	}
}

// TestSpecRefusals: what another container must be for this one to
// share with it or link to it.
func TestSpecRefusals(t *testing.T) {
	m := newMaker(t)
	add(t, m, "d", "donor", &container.HostConfig{IpcMode: "shareable"})
	for _, tc := range []struct {
		hc    *container.HostConfig
		class error
		text  string
	}{
		{&container.HostConfig{PidMode: "container:donor"}, errdefs.ErrConflict, "cannot join PID of a non running container"},
		{&container.HostConfig{NetworkMode: "container:donor"}, errdefs.ErrConflict, "cannot join network of a non running container"},
		{&container.HostConfig{IpcMode: "container:donor"}, errdefs.ErrConflict, "is not running"},
		{&container.HostConfig{PidMode: "container:nobody"}, errdefs.ErrNotFound, "No such container: nobody"},
		{&container.HostConfig{Links: []string{"donor:db"}}, errdefs.ErrInvalidArgument, "cannot link to a non running container: /donor AS /user/db"},
		{&container.HostConfig{Links: []string{"nobody:db"}}, errdefs.ErrNotFound, "could not get container for nobody"},
		{&container.HostConfig{ExtraHosts: []string{"nocolon"}}, errdefs.ErrInvalidArgument, "invalid extra host"},
	} {
		c := add(t, m, "u", "user", tc.hc)
		_, err := m.Spec(c, "/nonexistent-root", nil)
		if !errors.Is(err, tc.class) || err == nil || !strings.Contains(err.Error(), tc.text) {
			t.Errorf("%+v: %v, want %v with %q", tc.hc, err, tc.class, tc.text)
		}
		m.Containers.Forget(c)
	}
}

func TestUseInit(t *testing.T) {
	m := newMaker(t)
	no, yes := false, true
	for _, tc := range []struct {
		daemon bool
		hc     container.HostConfig
		want   bool
	}{
		{false, container.HostConfig{}, false},
		{true, container.HostConfig{}, true},
		{true, container.HostConfig{Init: &no}, false},
		{false, container.HostConfig{Init: &yes}, true},
		{true, container.HostConfig{Init: &yes, Runtime: vmtask.Name}, false}, // the agent is a VM's init
	} {
		m.Init = tc.daemon
		if got := m.UseInit(&tc.hc); got != tc.want {
			t.Errorf("daemon --init %v, %+v: %v", tc.daemon, tc.hc, got)
		}
	}
}
