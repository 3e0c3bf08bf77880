package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/testutil"
)

func mountCount(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

func TestBadInput(t *testing.T) {
	r := newRT(t)
	mounts := mountCount(t)

	malformed := t.TempDir()
	if err := os.WriteFile(filepath.Join(malformed, "config.json"), []byte(`{"ociVersion": "1.0.2", "process": {`), 0o644); err != nil {
		t.Fatal(err)
	}
	noRootfs := testutil.Bundle(t, []string{"true"}, nil)
	if err := os.RemoveAll(filepath.Join(noRootfs, "rootfs")); err != nil {
		t.Fatal(err)
	}
	noProgram := testutil.Bundle(t, []string{"/bin/nonexistent"}, nil)
	notInPath := testutil.Bundle(t, []string{"nonexistent"}, nil)
	noArgs := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) { s.Process.Args = nil })
	badNS := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
	})
	badCap := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Process.Capabilities.Bounding = append(s.Process.Capabilities.Bounding, "CAP_BOGUS")
	})
	badMount := testutil.Bundle(t, []string{"true"}, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/x", Type: "bind", Source: "/nonexistent/source"})
	})

	for _, tc := range []struct {
		name, bundle, want string
	}{
		{"malformed", malformed, "malformed config.json"},
		{"no-config", t.TempDir(), "config.json not found"},
		{"no-rootfs", noRootfs, "not a directory"},
		{"no-program", noProgram, `stat /bin/nonexistent: no such file or directory`},
		{"not-in-path", notInPath, `exec: "nonexistent": executable file not found in $PATH`},
		{"no-args", noArgs, "process.args must not be empty"},
		{"bad-namespace", badNS, `unknown namespace type "bogus"`},
		{"bad-capability", badCap, `unknown capability "CAP_BOGUS"`},
		{"bad-mount", badMount, "/nonexistent/source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := r.run(tc.bundle, nil, "create", tc.name)
			if res.Code == 0 || !strings.Contains(res.Stderr, tc.want) {
				t.Fatalf("got %s\nwant a failure mentioning %q", res, tc.want)
			}
			r.assertGone(tc.name, "/"+tc.name)
		})
	}

	ok := testutil.Bundle(t, []string{"sleep", "1000"}, nil)
	r.ok("create", "--bundle", ok, "dup")
	res := r.run(ok, nil, "create", "dup")
	if res.Code == 0 || !strings.Contains(res.Stderr, "already exists") {
		t.Errorf("duplicate id: %s", res)
	}
	if st := r.state("dup"); st["status"] != "created" {
		t.Errorf("the first container was disturbed by the duplicate: %v", st)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"kill", "dup", "SIGBOGUS"}, `unknown signal "SIGBOGUS"`},
		{[]string{"kill", "dup", "99"}, "invalid signal number"},
		{[]string{"state", "nope"}, `container "nope" does not exist`},
		{[]string{"start", "nope"}, "does not exist"},
		{[]string{"delete", "nope"}, "does not exist"},
		{[]string{"exec", "nope", "true"}, "does not exist"},
		{[]string{"state", "../etc"}, "invalid container id"},
		{[]string{"create", "--bundle", ok, "bad/id"}, "invalid container id"},
		{[]string{"resume", "dup"}, "cannot resume"},
	} {
		res := r.run("", nil, tc.args...)
		if res.Code == 0 || !strings.Contains(res.Stderr, tc.want) {
			t.Errorf("%v: %s\nwant a failure mentioning %q", tc.args, res, tc.want)
		}
	}
	if st := r.state("dup"); st["status"] != "created" {
		t.Errorf("a failed command disturbed the container: %v", st)
	}
	r.ok("delete", "dup")
	if got := mountCount(t); got != mounts {
		t.Errorf("host mounts went from %d to %d", mounts, got)
	}
}

func TestLogFileJSON(t *testing.T) {
	r := newRT(t)
	log := filepath.Join(t.TempDir(), "log.json")
	res := r.run("", nil, "--log", log, "--log-format", "json", "state", "missing")
	if res.Code == 0 {
		t.Fatal("state of a missing container succeeded")
	}
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), `"level":"error"`) || !strings.Contains(string(b), "does not exist") {
		t.Errorf("log file: %q", b)
	}
}
