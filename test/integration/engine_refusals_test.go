package integration

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// refusingProfile writes a docker seccomp profile that allows every call
// but names (EPERM) and returns its path.
func refusingProfile(t *testing.T, names ...string) string {
	t.Helper()
	b, err := json.Marshal(map[string]any{
		"defaultAction": "SCMP_ACT_ALLOW",
		"syscalls":      []map[string]any{{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "seccomp.json")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestEngineBadInput: malformed requests, hostile tarballs and what the
// engine cannot do yet are refused with docker's errors, and leave nothing.
func TestEngineBadInput(t *testing.T) {
	e := startTent(t)
	c := e.http()
	post := func(path, body string) (int, string) {
		resp, err := c.Post("http://tent/v1.50"+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m.Message
	}
	for _, tc := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"/containers/create", "{not json", 400, "invalid JSON"},
		{"/containers/create", "", 400, "invalid JSON"},
		{"/containers/create", `{"Image":"nosuch"}`, 404, "No such image: nosuch"},
		{"/containers/create?name=bad/name", `{"Image":"busybox"}`, 400, "Invalid container name"},
		{"/containers/nosuch/start", "", 404, "No such container: nosuch"},
		{"/containers/create", `{"Image":"busybox","HostConfig":{"Memory":1024}}`, 400, "Minimum memory limit"},
		{"/containers/create", `{"Image":"busybox","HostConfig":{"MemorySwappiness":200}}`, 400, "valid memory swappiness range is 0-100"},
		{"/containers/create", `{"Image":"busybox","HostConfig":{"DeviceCgroupRules":["c 1:3"]}}`, 400, "invalid device cgroup rule format"},
		{"/containers/create", `{"Image":"busybox","HostConfig":{"Devices":[{"PathOnHost":"/dev/null","CgroupPermissions":"rwx"}]}}`, 400, "invalid device mode: rwx"},
		{"/containers/create", `{"Image":"busybox","HostConfig":{"CpuCount":2}}`, 400, "options of Windows containers"},
		{"/containers/create", `{"Image":"busybox","HostConfig":{"CgroupnsMode":"other"}}`, 400, "invalid cgroup namespace mode"},
		// As dockerd: a 404, on which the docker CLI tries a pull of that platform.
		{"/containers/create?platform=linux/arm64", `{"Image":"busybox"}`, 404, "does not match the specified platform: wanted linux/arm64, actual: linux/amd64"},
	} {
		code, msg := post(tc.path, tc.body)
		if code != tc.code || !strings.Contains(msg, tc.msg) {
			t.Errorf("POST %s %q: %d %q, want %d %q", tc.path, tc.body, code, msg, tc.code, tc.msg)
		}
	}
	// What the engine cannot do yet is refused through the docker CLI,
	// never accepted and ignored; nothing is created.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--runtime", "kata"}, "unknown or invalid runtime name: kata"},
		{[]string{"--security-opt", "apparmor=docker-default"}, "AppArmor is not enabled on this host"},
		{[]string{"--security-opt", "label=type:container_t"}, "SELinux labels are not supported"},
		{[]string{"--security-opt", "bogus=1"}, `invalid --security-opt 2: "bogus=1"`},
		{[]string{"--log-driver", "syslog"}, "logger: no log driver named 'syslog' is registered"},
		{[]string{"--log-opt", "compress=true"}, "compress cannot be true when max-file is less than 2 or max-size is not set"},
		{[]string{"--log-opt", "tag=x"}, "unknown log opt 'tag' for json-file log driver"},
		{[]string{"--log-opt", "max-size=lots"}, `invalid max-size "lots"`},
		{[]string{"--group-add", "nosuchgroup"}, "unable to find group nosuchgroup"},
		{[]string{"--gpus", "all"}, `could not select device driver ""`},
		{[]string{"--storage-opt", "size=1G"}, "--storage-opt is supported only for overlay over xfs"},
		{[]string{"--isolation", "hyperv"}, "Invalid isolation"},
	} {
		if b, _ := os.ReadFile("/sys/module/apparmor/parameters/enabled"); strings.HasPrefix(string(b), "Y") && strings.Contains(tc.msg, "AppArmor") {
			continue // a host with AppArmor applies the profile
		}
		args := append(append([]string{"run", "--rm"}, tc.args...), "busybox", "true")
		if _, errOut, code := e.runIn(nil, args...); code != 125 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("docker %v: exit %d %q, want 125 saying %q", args, code, errOut, tc.msg)
		}
	}
	if ps := e.must(t, "ps", "-aq"); ps != "" {
		t.Errorf("refused runs left containers: %q", ps)
	}
	// runc names tent's own runtime (a drop-in for it), so compose files
	// and scripts written for dockerd that name it work.
	if out := e.must(t, "run", "--rm", "--runtime", "runc", "busybox", "echo", "ran"); out != "ran\n" {
		t.Errorf("--runtime runc: %q", out)
	}
	for _, ok := range [][]string{{"--runtime", "tent"}, {"--platform", "linux/amd64"}, {"--security-opt", "apparmor=unconfined"},
		{"--security-opt", "label=disable"}, {"--security-opt", "no-new-privileges=true"},
		{"--log-driver", "json-file", "--log-opt", "max-size=1m", "--log-opt", "max-file=2"}} {
		if out := e.must(t, append(append([]string{"run", "--rm"}, ok...), "busybox", "echo", "ok")...); out != "ok\n" {
			t.Errorf("run %v: %q", ok, out)
		}
	}
	// --group-add was ignored once: the process must have the group.
	if out := e.must(t, "run", "--rm", "--group-add", "1234", "busybox", "id", "-G"); !slices.Contains(strings.Fields(out), "1234") {
		t.Errorf("--group-add 1234: id -G says %q", out)
	}
	if rt := e.must(t, "run", "-d", "busybox", "true"); rt != "" {
		id := strings.TrimSpace(rt)
		if got := e.must(t, "inspect", "--format", "{{.HostConfig.Runtime}} {{.HostConfig.LogConfig.Type}}", id); got != "tent json-file\n" {
			t.Errorf("inspect HostConfig.Runtime and LogConfig.Type: %q, want tent json-file", got)
		}
		e.must(t, "rm", "-f", id)
	}
	resp, err := c.Get("http://tent/v1.12/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 400 {
		t.Errorf("too old an API version: %d, want 400", resp.StatusCode)
	}
	if _, errOut, code := e.runIn(nil, "rm", "nosuch"); code == 0 || !strings.Contains(errOut, "No such container: nosuch") {
		t.Errorf("rm nosuch: exit %d %q", code, errOut)
	}
	// Hostile tarballs: nothing lands outside the store, no image is made.
	outside := filepath.Join(t.TempDir(), "outside")
	for name, entries := range map[string][]tar.Header{
		"dotdot":   {{Name: "../../../../../../" + outside[1:], Typeflag: tar.TypeReg, Mode: 0o644}},
		"absolute": {{Name: outside, Typeflag: tar.TypeReg, Mode: 0o644}},
		"symlink": {{Name: "link", Typeflag: tar.TypeSymlink, Linkname: filepath.Dir(outside), Mode: 0o777},
			{Name: "link/outside", Typeflag: tar.TypeReg, Mode: 0o644}},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range entries {
			h.Size = 0
			if h.Typeflag == tar.TypeReg {
				h.Size = 4
			}
			tw.WriteHeader(&h)
			if h.Size > 0 {
				tw.Write([]byte("evil"))
			}
		}
		tw.Close()
		e.runIn(&buf, "import", "-", "hostile:"+name)
		if _, err := os.Stat(outside); err == nil {
			t.Errorf("%s: the tarball wrote %s", name, outside)
			os.Remove(outside)
		}
	}
	truncated := bytes.NewReader(bytes.Repeat([]byte("x"), 700))
	if _, _, code := e.runIn(truncated, "import", "-", "truncated:1"); code == 0 {
		t.Errorf("a truncated tarball was imported")
	}
	if out := e.must(t, "images", "--format", "{{.Repository}}"); strings.Contains(out, "truncated") {
		t.Errorf("images after bad imports: %q", out)
	}
}
