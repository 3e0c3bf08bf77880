package runtimes

import (
	"errors"
	"log/slog"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/system"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/task/ocibin"
	"github.com/tent-project/tent/internal/task/vmtask"
)

func open(t *testing.T, bins map[string]ocibin.Binary, def string) (*Set, error) {
	t.Helper()
	s, err := Open(Config{Exe: "/bin/true", ExecRoot: t.TempDir(), DataRoot: t.TempDir(), Binaries: bins, Default: def,
		Log: slog.New(slog.DiscardHandler)})
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func TestSelect(t *testing.T) {
	s, err := open(t, map[string]ocibin.Binary{"crun": {Path: "/usr/bin/crun", Args: []string{"--debug"}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		hc   container.HostConfig
		want string
		err  string
	}{
		{container.HostConfig{}, Own, ""},
		{container.HostConfig{Runtime: RuncAlias}, RuncAlias, ""},
		{container.HostConfig{Runtime: "crun"}, "crun", ""},
		{container.HostConfig{Runtime: "nope"}, "", "unknown or invalid runtime name: nope"},
		{container.HostConfig{Isolation: "hyperv"}, "", `Invalid isolation: "hyperv"`},
		{container.HostConfig{Isolation: "vm", Runtime: "crun"}, "", "conflicting options: --isolation vm runs with the tent-vm runtime, not crun"},
	} {
		hc := tc.hc
		err := s.Select(&hc)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, errdefs.ErrInvalidArgument) {
				t.Errorf("%+v: %v, want %q", tc.hc, err, tc.err)
			}
			continue
		}
		if err != nil || hc.Runtime != tc.want {
			t.Errorf("%+v: runtime %q, %v", tc.hc, hc.Runtime, err)
		}
	}
	hc := container.HostConfig{Isolation: "VM"}
	err = s.Select(&hc)
	if s.vmErr != nil {
		if !errors.Is(err, errdefs.ErrUnavailable) {
			t.Errorf("--isolation vm without VM support: %v", err)
		}
	} else if err != nil || hc.Runtime != vmtask.Name || hc.Isolation != "vm" || s.VM(hc.Runtime) == nil {
		t.Errorf("--isolation vm: %+v %v", hc, err)
	}
	if own, err := s.Get(""); err != nil || own != s.byName[Own] {
		t.Errorf("a record that names no runtime: %v", err)
	}

	info := &system.Info{}
	s.Info(info)
	if info.DefaultRuntime != Own || info.Runtimes[RuncAlias].Path != "/bin/true" ||
		info.Runtimes["crun"].Path != "/usr/bin/crun" || strings.Join(info.Runtimes["crun"].Args, " ") != "--debug" {
		t.Errorf("info: %+v", info)
	}
}

func TestBadConfigurations(t *testing.T) {
	for _, tc := range []struct {
		bins map[string]ocibin.Binary
		def  string
		err  string
	}{
		{map[string]ocibin.Binary{RuncAlias: {Path: "/usr/bin/runc"}}, "", `runtime name "runc" is reserved`},
		{map[string]ocibin.Binary{vmtask.Name: {Path: "/usr/bin/runc"}}, "", `runtime name "tent-vm" is reserved`},
		{map[string]ocibin.Binary{Own: {Path: "/usr/bin/runc"}}, "", `runtime name "tent" is reserved`},
		{map[string]ocibin.Binary{"rel": {Path: "runc"}}, "", "an absolute path is needed"},
		{nil, "nope", "default runtime: unknown or invalid runtime name: nope"},
	} {
		if _, err := open(t, tc.bins, tc.def); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%+v %q: %v, want %q", tc.bins, tc.def, err, tc.err)
		}
	}
	s, err := open(t, map[string]ocibin.Binary{"crun": {Path: "/usr/bin/crun"}}, "crun")
	if err != nil {
		t.Fatal(err)
	}
	hc := container.HostConfig{}
	if err := s.Select(&hc); err != nil || hc.Runtime != "crun" {
		t.Errorf("the configured default: %q %v", hc.Runtime, err)
	}
}
