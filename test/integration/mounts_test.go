package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEngineMountOptions: --mount's options are applied, not taken and
// dropped: read-only binds are read-only all the way down (API 1.44+, as
// dockerd 25+) unless the client is older or asks otherwise
// (bind-recursive), CreateMountpoint makes the source, volume-label
// labels the volume it makes, tmpfs options reach the mount, and a
// volume subpath (not supported yet) is refused.
func TestEngineMountOptions(t *testing.T) {
	e := startTent(t)
	host := t.TempDir()
	sub := filepath.Join(host, "sub")
	os.Mkdir(sub, 0o755)
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("a submount for the test: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	os.WriteFile(filepath.Join(sub, "f"), []byte("in the submount\n"), 0o644)

	// probe writes to the bind's top and to its submount.
	probe := `touch /h/top 2>/dev/null && echo top-rw || echo top-ro; touch /h/sub/x 2>/dev/null && echo sub-rw || echo sub-ro; cat /h/sub/f 2>/dev/null || echo no-submount`
	for _, tc := range []struct {
		name string
		env  string // the docker CLI's API version, if not the newest
		args []string
		want string
	}{
		{"-v ro", "", []string{"-v", host + ":/h:ro"}, "top-ro\nsub-ro\nin the submount\n"},
		{"-v ro before 1.44", "1.43", []string{"-v", host + ":/h:ro"}, "top-ro\nsub-rw\nin the submount\n"},
		{"--mount readonly", "", []string{"--mount", "type=bind,src=" + host + ",dst=/h,readonly"}, "top-ro\nsub-ro\nin the submount\n"},
		{"bind-recursive=writable", "", []string{"--mount", "type=bind,src=" + host + ",dst=/h,readonly,bind-recursive=writable"}, "top-ro\nsub-rw\nin the submount\n"},
		{"bind-recursive=disabled", "", []string{"--mount", "type=bind,src=" + host + ",dst=/h,bind-recursive=disabled"}, "top-rw\nsub-rw\nno-submount\n"},
		{"-v rw", "", []string{"-v", host + ":/h"}, "top-rw\nsub-rw\nin the submount\n"},
	} {
		cmd := e.command(append(append([]string{"run", "--rm"}, tc.args...), "busybox", "sh", "-c", probe)...)
		if tc.env != "" {
			cmd.Env = append(cmd.Env, "DOCKER_API_VERSION="+tc.env)
		}
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != tc.want {
			t.Errorf("%s: %q (%v), want %q", tc.name, out, err, tc.want)
		}
		os.Remove(filepath.Join(host, "top"))
		os.Remove(filepath.Join(sub, "x"))
		os.Remove(filepath.Join(host, "sub", "x")) // a non-recursive bind wrote under the submount
	}

	// CreateMountpoint: a missing source is made (without it, refused).
	missing := filepath.Join(host, "made", "here")
	if _, errOut, code := e.runIn(nil, "run", "--rm", "--mount", "type=bind,src="+missing+",dst=/m", "busybox", "true"); code == 0 || !strings.Contains(errOut, "bind source path does not exist") {
		t.Errorf("a missing bind source: exit %d %q", code, errOut)
	}
	// (The API's BindOptions.CreateMountpoint; this docker CLI has no flag.)
	var made struct{ Id string }
	if code := e.api(t, "POST", "/v1.45/containers/create", `{"Image":"busybox","Cmd":["true"],
		"HostConfig":{"Mounts":[{"Type":"bind","Source":"`+missing+`","Target":"/m","BindOptions":{"CreateMountpoint":true}}]}}`, &made); code != 201 {
		t.Fatalf("create with CreateMountpoint: %d", code)
	}
	e.must(t, "start", "-a", made.Id)
	e.must(t, "rm", made.Id)
	if fi, err := os.Stat(missing); err != nil || !fi.IsDir() {
		t.Errorf("bind-create-src made no directory: %v", err)
	}

	// volume-label labels the volume the mount makes.
	e.must(t, "run", "--rm", "--mount", "type=volume,src=labelled,dst=/v,volume-label=team=db", "busybox", "true")
	if got := e.must(t, "volume", "inspect", "-f", "{{.Labels.team}}", "labelled"); got != "db\n" {
		t.Errorf("volume-label: %q", got)
	}
	e.must(t, "volume", "rm", "labelled")

	// A volume subpath is refused, not mounted whole.
	if _, errOut, code := e.runIn(nil, "run", "--rm", "--mount", "type=volume,src=sp,dst=/v,volume-subpath=x", "busybox", "true"); code == 0 || !strings.Contains(errOut, "volume subpath (x) is not supported yet") {
		t.Errorf("volume-subpath: exit %d %q", code, errOut)
	}

	// TmpfsOptions.Options (the API's; the CLI has no flag for them).
	var cr struct{ Id string }
	if code := e.api(t, "POST", "/v1.46/containers/create", `{"Image":"busybox","Cmd":["sh","-c","grep ' /t ' /proc/mounts"],
		"HostConfig":{"Mounts":[{"Type":"tmpfs","Target":"/t","TmpfsOptions":{"Options":[["noexec"],["nr_inodes","1k"]]}}]}}`, &cr); code != 201 {
		t.Fatalf("create with tmpfs options: %d", code)
	}
	if out := e.must(t, "start", "-a", cr.Id); !strings.Contains(out, "noexec") || !strings.Contains(out, "nr_inodes=1024") {
		t.Errorf("tmpfs options in the container's mount: %q", out)
	}
	e.must(t, "rm", cr.Id)
}
