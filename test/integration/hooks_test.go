package integration

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/testutil"
)

func TestHooks(t *testing.T) {
	r := newRT(t)
	logDir := t.TempDir()
	logf := filepath.Join(logDir, "hooks.log")
	// Host-side hooks append "<name> <status> <pid>" from the state on stdin.
	hook := func(name string) specs.Hook {
		return specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
			`read -r s; st=$(echo "$s" | sed 's/.*"status":"\([a-z]*\)".*/\1/'); echo "` + name + ` $st $(echo "$s" | grep -c '"pid"') $X" >> ` + logf, "x"},
			Env: []string{"X=env-ok"}}
	}
	// startContainer runs in the container, after pivot_root: it sees the
	// container's file system, where /log is the host's logDir.
	inContainer := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c", "echo startContainer $(hostname) >> /log/hooks.log"}}
	b := testutil.Bundle(t, []string{"sh", "-c", "echo main >> /log/hooks.log"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/log", Type: "bind", Source: logDir, Options: []string{"bind"}})
		s.Hooks = &specs.Hooks{
			//lint:ignore SA1019 prestart is deprecated, but engines still use it and it must work
			Prestart:        []specs.Hook{hook("prestart")},
			CreateRuntime:   []specs.Hook{hook("createRuntime")},
			CreateContainer: []specs.Hook{hook("createContainer")},
			StartContainer:  []specs.Hook{inContainer},
			Poststart:       []specs.Hook{hook("poststart")},
			Poststop:        []specs.Hook{hook("poststop")},
		}
	})
	r.ok("create", "--bundle", b, "hooked")
	r.ok("start", "hooked")
	r.waitStatus("hooked", "stopped")
	r.ok("delete", "hooked")
	got, err := os.ReadFile(logf)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	want := []string{
		"prestart creating 1 env-ok", "createRuntime creating 1 env-ok", "createContainer creating 1 env-ok",
		"startContainer tent",
	}
	if len(lines) != 7 {
		t.Fatalf("hook log:\n%s", got)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("hook %d: %q, want %q", i, lines[i], w)
		}
	}
	// poststart and the program itself race; both must be there, then poststop.
	rest := strings.Join(lines[4:6], "\n")
	if !strings.Contains(rest, "poststart running 1 env-ok") || !strings.Contains(rest, "main") {
		t.Errorf("poststart/main: %q", rest)
	}
	if lines[6] != "poststop stopped 1 env-ok" {
		t.Errorf("last hook: %q", lines[6])
	}
}

func TestFailingHookAbortsCreate(t *testing.T) {
	r := newRT(t)
	b := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo broken hook >&2; exit 3"}}}}
	})
	res := r.run(b, nil, "create", "badhook")
	if res.Code == 0 || !strings.Contains(res.Stderr, "broken hook") {
		t.Fatalf("create with a failing hook: %s", res)
	}
	r.assertGone("badhook", "/badhook")
	timeout := 1
	b2 := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/sleep", Args: []string{"sleep", "30"}, Timeout: &timeout}}}
	})
	res = r.run(b2, nil, "create", "slowhook")
	if res.Code == 0 || !strings.Contains(res.Stderr, "timed out") {
		t.Fatalf("create with a hanging hook: %s", res)
	}
	r.assertGone("slowhook", "/slowhook")
}

func TestSeccomp(t *testing.T) {
	r := newRT(t)
	eacces := uint(13)
	b := testutil.Bundle(t, []string{"sh", "-c", "mkdir /dev/shm/d 2>&1; mount -t tmpfs none /mnt 2>&1; touch /dev/shm/ok && echo touch-ok"}, func(s *specs.Spec) {
		s.Linux.Seccomp.Syscalls = append([]specs.LinuxSyscall{
			{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: &eacces},
		}, s.Linux.Seccomp.Syscalls...)
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_SYS_ADMIN")
		s.Process.Capabilities.Effective = append(s.Process.Capabilities.Effective, "CAP_SYS_ADMIN")
		s.Process.Capabilities.Permitted = append(s.Process.Capabilities.Permitted, "CAP_SYS_ADMIN")
		s.Process.NoNewPrivileges = false
	})
	res := r.run(b, nil, "run", "seccomp")
	if res.Code != 0 {
		t.Fatalf("run: %s", res)
	}
	// mkdir fails with the rule's errno; mount is outside the default
	// profile (compiled for a container without CAP_SYS_ADMIN) even though
	// the capability is held; everything else works.
	for _, want := range []string{"Permission denied", "mount: permission denied", "touch-ok"} {
		if !strings.Contains(res.Stdout, want) {
			t.Errorf("missing %q in %q", want, res.Stdout)
		}
	}
	if out := r.runOut("noseccomp", []string{"grep", "Seccomp:", "/proc/self/status"}, func(s *specs.Spec) { s.Linux.Seccomp = nil }); !strings.Contains(out, "0") {
		t.Errorf("without a profile: %q", out)
	}
}

func TestFeaturesAndSpec(t *testing.T) {
	r := newRT(t)
	var f map[string]any
	if err := json.Unmarshal([]byte(r.ok("features")), &f); err != nil {
		t.Fatalf("features: %v", err)
	}
	if f["ociVersionMax"] == nil || f["linux"] == nil {
		t.Errorf("features: %v", f)
	}
	dir := t.TempDir()
	if res := r.run(dir, nil, "spec"); res.Code != 0 {
		t.Fatalf("spec: %s", res)
	}
	var s specs.Spec
	data, _ := os.ReadFile(filepath.Join(dir, "config.json"))
	if err := json.Unmarshal(data, &s); err != nil || s.Linux.Seccomp == nil || s.Process.Args[0] != "sh" {
		t.Errorf("spec wrote %v (%v)", s, err)
	}
	if res := r.run(dir, nil, "spec"); res.Code == 0 || !strings.Contains(res.Stderr, "exists") {
		t.Errorf("spec over an existing config.json: %s", res)
	}
}
