package spec

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
)

const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// root makes a container root with an /etc/passwd and /etc/group.
func root(t *testing.T) string {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc", "group"), []byte("root:x:0:\napp:x:1000:\nstaff:x:50:app,other\n"), 0o644)
	return dir
}

func build(t *testing.T, cfg *container.Config, hc *container.HostConfig, edit func(*Container)) *specs.Spec {
	t.Helper()
	c := Container{ID: id, Config: cfg, Host: hc, Args: []string{"sh", "-c", "true"}, Rootfs: root(t), CgroupParent: "/tent"}
	if edit != nil {
		edit(&c)
	}
	s, err := Build(c)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func hasNS(s *specs.Spec, typ specs.LinuxNamespaceType) bool {
	return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == typ })
}

func TestBuildDefaults(t *testing.T) {
	s := build(t, &container.Config{User: "app", Env: []string{"A=1", "PATH=/bin"}}, &container.HostConfig{}, nil)
	if s.Hostname != id[:12] || s.Linux.CgroupsPath != "/tent/"+id || s.Root.Path == "" || s.Root.Readonly {
		t.Errorf("hostname %q, cgroup %q, root %+v", s.Hostname, s.Linux.CgroupsPath, s.Root)
	}
	if diff := cmp.Diff(defaultCaps, s.Process.Capabilities.Bounding); diff != "" {
		t.Errorf("capabilities (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"PATH=/bin", "HOSTNAME=" + id[:12], "A=1"}, s.Process.Env); diff != "" {
		t.Errorf("env (-want +got):\n%s", diff)
	}
	if u := s.Process.User; u.UID != 1000 || u.GID != 1000 || !slices.Equal(u.AdditionalGids, []uint32{50}) {
		t.Errorf("user %+v, want 1000:1000 with group 50", u)
	}
	if s.Linux.Seccomp == nil || len(s.Linux.MaskedPaths) == 0 || s.Process.Cwd != "/" {
		t.Errorf("seccomp %v, masked paths %v, cwd %q", s.Linux.Seccomp != nil, s.Linux.MaskedPaths, s.Process.Cwd)
	}
	for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace} {
		if !hasNS(s, typ) {
			t.Errorf("no %s namespace", typ)
		}
	}
}

func TestBuildModes(t *testing.T) {
	s := build(t, &container.Config{}, &container.HostConfig{NetworkMode: "host"}, nil)
	if hasNS(s, specs.NetworkNamespace) || hasNS(s, specs.UTSNamespace) || s.Hostname != "" {
		t.Errorf("host network: namespaces %v, hostname %q", s.Linux.Namespaces, s.Hostname)
	}
	s = build(t, &container.Config{}, &container.HostConfig{Privileged: true}, nil)
	if s.Linux.Seccomp != nil || len(s.Linux.MaskedPaths) != 0 || len(s.Process.Capabilities.Bounding) <= len(defaultCaps) ||
		!s.Linux.Resources.Devices[0].Allow {
		t.Errorf("privileged: seccomp %v, masked %v, %d caps, devices %+v", s.Linux.Seccomp != nil, s.Linux.MaskedPaths,
			len(s.Process.Capabilities.Bounding), s.Linux.Resources.Devices)
	}
	s = build(t, &container.Config{}, &container.HostConfig{PidMode: "container:db"}, func(c *Container) { c.PIDNamespace = "/proc/42/ns/pid" })
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.PIDNamespace && n.Path != "/proc/42/ns/pid" {
			t.Errorf("--pid container: %+v", n)
		}
	}
	s = build(t, &container.Config{}, &container.HostConfig{IpcMode: "none"}, nil)
	if slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" }) {
		t.Error("--ipc none kept /dev/shm")
	}
	s = build(t, &container.Config{}, &container.HostConfig{IpcMode: "host"}, nil)
	if hasNS(s, specs.IPCNamespace) || !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/dev/shm" && m.Source == "/dev/shm" }) {
		t.Error("--ipc host: the host's namespace and /dev/shm expected")
	}
	s = build(t, &container.Config{}, &container.HostConfig{Resources: container.Resources{Memory: 64 << 20, NanoCPUs: 5e8}, ReadonlyRootfs: true}, nil)
	if *s.Linux.Resources.Memory.Limit != 64<<20 || *s.Linux.Resources.Memory.Swap != 128<<20 || *s.Linux.Resources.CPU.Quota != 50000 || !s.Root.Readonly {
		t.Errorf("limits: %+v %+v, readonly %v", s.Linux.Resources.Memory, s.Linux.Resources.CPU, s.Root.Readonly)
	}
}

func TestBuildDevicesAndAnnotations(t *testing.T) {
	hc := &container.HostConfig{CgroupnsMode: "host", Annotations: map[string]string{"org.example/a": "1"},
		Resources: container.Resources{Devices: []container.DeviceMapping{{PathOnHost: "/dev/null", PathInContainer: "/dev/n2", CgroupPermissions: "rw"}},
			DeviceCgroupRules: []string{"b *:* m"}}}
	s := build(t, &container.Config{}, hc, nil)
	if hasNS(s, specs.CgroupNamespace) || s.Annotations["org.example/a"] != "1" {
		t.Errorf("cgroupns host: %v, annotations %v", s.Linux.Namespaces, s.Annotations)
	}
	if d := s.Linux.Devices; len(d) != 1 || d[0].Path != "/dev/n2" || d[0].Type != "c" || d[0].Major != 1 || d[0].Minor != 3 {
		t.Errorf("devices: %+v", s.Linux.Devices)
	}
	rules := s.Linux.Resources.Devices
	if n := len(rules); n != 3 || rules[0].Allow || !rules[1].Allow || *rules[1].Major != 1 || rules[1].Access != "rw" ||
		rules[2].Type != "b" || rules[2].Major != nil || rules[2].Access != "m" {
		t.Errorf("device rules: %+v", rules)
	}
	hc.Devices[0].PathOnHost = "/etc/passwd"
	if _, err := Build(Container{ID: id, Config: &container.Config{}, Host: hc, Args: []string{"true"}, Rootfs: root(t)}); err == nil || !strings.Contains(err.Error(), "not a device node") {
		t.Errorf("a regular file as a device: %v", err)
	}
}

func TestBuildMountOrder(t *testing.T) {
	s := build(t, &container.Config{Tty: true}, &container.HostConfig{Tmpfs: map[string]string{"/scratch": "size=1m"}}, func(c *Container) {
		c.Init = "/usr/bin/tini"
		c.Files = func(hostname string) ([][2]string, error) {
			return [][2]string{{"/data/" + hostname, "/etc/hostname"}}, nil
		}
		c.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: "/srv"}}
	})
	var order []string
	for _, m := range s.Mounts {
		order = append(order, m.Destination)
	}
	at := func(d string) int { return slices.Index(order, d) }
	if !(at(InitDest) >= 0 && at(InitDest) < at("/etc/hostname") && at("/etc/hostname") < at("/scratch") && at("/scratch") < at("/data")) {
		t.Errorf("mount order %v: defaults, init, /etc files, tmpfs, then volumes", order)
	}
	if s.Process.Args[0] != InitDest || !slices.Contains(s.Process.Env, "TERM=xterm") {
		t.Errorf("args %v, env %v", s.Process.Args, s.Process.Env)
	}
}

func TestParseSecurityOpts(t *testing.T) {
	for _, tc := range []struct {
		opts []string
		want SecurityOpts
		err  error
	}{
		{[]string{"no-new-privileges"}, SecurityOpts{NoNewPrivileges: true}, nil},
		{[]string{"no-new-privileges:true", "no-new-privileges=false"}, SecurityOpts{}, nil},
		{[]string{"seccomp=unconfined", "apparmor=unconfined", "label=disable"}, SecurityOpts{Seccomp: "unconfined", AppArmor: "unconfined"}, nil},
		{[]string{"no-new-privileges=maybe"}, SecurityOpts{}, errdefs.ErrInvalidArgument},
		{[]string{"bogus"}, SecurityOpts{}, errdefs.ErrInvalidArgument},
		{[]string{"bogus=1"}, SecurityOpts{}, errdefs.ErrInvalidArgument},
		{[]string{"label=type:container_t"}, SecurityOpts{}, errdefs.ErrNotImplemented},
	} {
		got, err := ParseSecurityOpts(tc.opts)
		if tc.err != nil {
			if !errdefs.IsInvalidArgument(err) && tc.err == errdefs.ErrInvalidArgument || tc.err == errdefs.ErrNotImplemented && !strings.Contains(err.Error(), "SELinux") {
				t.Errorf("%v: error %v, want class %v", tc.opts, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%v: %+v %v, want %+v", tc.opts, got, err, tc.want)
		}
	}
}

func TestMergeEnv(t *testing.T) {
	got := MergeEnv([]string{"A=1", "B=2"}, []string{"B=3", "C=4"})
	if diff := cmp.Diff([]string{"A=1", "B=3", "C=4"}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestGroupAdd(t *testing.T) {
	s := build(t, &container.Config{User: "app"}, &container.HostConfig{GroupAdd: []string{"staff", "4000", "1000"}}, nil)
	// staff (50) is app's already; 1000 is its primary group.
	if got := s.Process.User.AdditionalGids; !slices.Equal(got, []uint32{50, 4000}) {
		t.Errorf("groups %v, want [50 4000]", got)
	}
	c := Container{ID: id, Config: &container.Config{}, Host: &container.HostConfig{GroupAdd: []string{"nosuch"}}, Args: []string{"true"}, Rootfs: root(t)}
	if _, err := Build(c); !errdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "unable to find group nosuch") {
		t.Errorf("an unknown group: %v", err)
	}
}

func TestJoinEngineNetNS(t *testing.T) {
	s := build(t, &container.Config{}, &container.HostConfig{}, func(c *Container) { c.NetNS = "/run/tent/netns/abc" })
	for _, n := range s.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace && n.Path != "/run/tent/netns/abc" {
			t.Errorf("network namespace %+v, want the engine's", n)
		}
	}
	s = build(t, &container.Config{}, &container.HostConfig{NetworkMode: "host"}, func(c *Container) { c.NetNS = "/run/tent/netns/abc" })
	if hasNS(s, specs.NetworkNamespace) {
		t.Error("host networking joined a namespace")
	}
}
