package integration

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/testutil"
)

// seedImage imports into the engines a busybox image that declares VOLUME /seed
// with a file in it, and a hostile one whose /seed is a symlink to /etc.
func seedImage(t *testing.T, engines ...interface {
	must(*testing.T, ...string) string
}) {
	t.Helper()
	for _, img := range []struct {
		name string
		make func(dir string)
	}{
		{"seed:1", func(dir string) {
			os.MkdirAll(filepath.Join(dir, "seed"), 0o750)
			os.WriteFile(filepath.Join(dir, "seed", "file"), []byte("from the image\n"), 0o640)
		}},
		{"seed:evil", func(dir string) { os.Symlink("/etc", filepath.Join(dir, "seed")) }},
	} {
		dir := filepath.Join(t.TempDir(), "rootfs")
		testutil.BusyboxRootfs(t, dir)
		img.make(dir)
		tarball := filepath.Join(t.TempDir(), "seed.tar")
		if out, err := exec.Command("tar", "-C", dir, "-cf", tarball, ".").CombinedOutput(); err != nil {
			t.Fatalf("tar: %v %s", err, out)
		}
		for _, e := range engines {
			e.must(t, "import", "--change", "VOLUME /seed", tarball, img.name)
		}
	}
}

// TestEngineVolumes drives named and anonymous volumes with the docker CLI.
func TestEngineVolumes(t *testing.T) {
	e := startTent(t)
	seedImage(t, e)
	if out := e.must(t, "volume", "create", "data1"); out != "data1\n" {
		t.Errorf("volume create: %q", out)
	}
	if ls := e.must(t, "volume", "ls"); !strings.Contains(ls, "local     data1") {
		t.Errorf("volume ls: %q", ls)
	}
	e.must(t, "run", "--rm", "-v", "data1:/data", "busybox", "sh", "-c", "echo kept > /data/f")
	if out := e.must(t, "run", "--rm", "-v", "data1:/d:ro", "busybox", "cat", "/d/f"); out != "kept\n" {
		t.Errorf("a volume's data in the next container: %q", out)
	}
	if _, errOut, code := e.runIn(nil, "run", "--rm", "-v", "data1:/d:ro", "busybox", "touch", "/d/g"); code == 0 || !strings.Contains(errOut, "Read-only file system") {
		t.Errorf("write to a :ro volume: exit %d %q", code, errOut)
	}

	// In use: refused; the error names the container.
	id := strings.TrimSpace(e.must(t, "run", "-d", "--name", "holder", "-v", "data1:/data", "busybox", "sleep", "1000"))
	if _, errOut, code := e.runIn(nil, "volume", "rm", "data1"); code != 1 || !strings.Contains(errOut, "volume is in use - ["+id) {
		t.Errorf("volume rm of a used volume: exit %d %q", code, errOut)
	}
	if ps := e.must(t, "ps", "-q", "--filter", "volume=data1"); strings.TrimSpace(ps) != id[:12] {
		t.Errorf("ps --filter volume=data1: %q", ps)
	}
	e.must(t, "rm", "-f", "holder")
	e.must(t, "volume", "rm", "data1")
	if _, errOut, code := e.runIn(nil, "volume", "inspect", "data1"); code != 1 || !strings.Contains(errOut, "no such volume") {
		t.Errorf("inspect of a removed volume: exit %d %q", code, errOut)
	}

	// An empty volume gets the image's files at its path (owners and modes
	// kept), once; nocopy leaves it empty.
	if out := e.must(t, "run", "--rm", "-v", "fresh:/seed", "seed:1", "sh", "-c", "cat /seed/file; stat -c %a /seed /seed/file"); out != "from the image\n750\n640\n" {
		t.Errorf("copy into a new volume: %q", out)
	}
	if out := e.must(t, "run", "--rm", "-v", "empty:/seed:nocopy", "seed:1", "ls", "-A", "/seed"); out != "" {
		t.Errorf("nocopy: %q", out)
	}
	// A hostile image's symlink is resolved inside its own root: the
	// volume gets the image's /etc (busybox's few files), not the host's.
	e.must(t, "run", "--rm", "-v", "evil:/data", "seed:evil", "true")
	mp := strings.TrimSpace(e.must(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "evil"))
	if _, err := os.Stat(filepath.Join(mp, "os-release")); err == nil {
		t.Errorf("the host's /etc was copied into a volume")
	}

	// Anonymous volumes: VOLUME in the image and -v /path; rm -v and --rm
	// take them along, named ones stay.
	before := len(strings.Fields(e.must(t, "volume", "ls", "-q")))
	e.must(t, "run", "--name", "anon", "-v", "/scratch", "seed:1", "cat", "/seed/file")
	if n := len(strings.Fields(e.must(t, "volume", "ls", "-q"))); n != before+2 {
		t.Errorf("%d volumes after a run with two anonymous ones, want %d", n, before+2)
	}
	if m := e.must(t, "inspect", "-f", "{{range .Mounts}}{{.Type}} {{.Destination}} {{.RW}};{{end}}", "anon"); m != "volume /scratch true;volume /seed true;\n" {
		t.Errorf("Mounts: %q", m)
	}
	e.must(t, "rm", "-v", "anon")
	e.must(t, "run", "--rm", "seed:1", "true")
	if n := len(strings.Fields(e.must(t, "volume", "ls", "-q"))); n != before {
		t.Errorf("%d volumes after rm -v and --rm, want %d", n, before)
	}
	e.must(t, "create", "--name", "keeper", "seed:1", "true")
	if out := e.must(t, "volume", "prune", "-f"); !strings.Contains(out, "Total reclaimed space:") {
		t.Errorf("volume prune: %q", out)
	}
	if n := len(strings.Fields(e.must(t, "volume", "ls", "-q"))); n != before+1 {
		t.Errorf("prune took a used anonymous volume or a named one: %d volumes, want %d", n, before+1)
	}
	e.must(t, "rm", "-v", "keeper")
	e.must(t, "volume", "prune", "-a", "-f")
	if ls := e.must(t, "volume", "ls", "-q"); ls != "" {
		t.Errorf("after prune -a: %q", ls)
	}

	// Bad input: clear errors, nothing made.
	for _, c := range []struct{ arg, want string }{
		{"bad*name:/x", "includes invalid characters for a local volume name"},
		{"vol:relative", "mount path must be absolute"},
		{"vol:/x:bogus", "invalid mode"},
	} {
		if _, errOut, code := e.runIn(nil, "run", "--rm", "-v", c.arg, "busybox", "true"); code != 125 || !strings.Contains(errOut, c.want) {
			t.Errorf("-v %s: exit %d %q, want 125 and %q", c.arg, code, errOut, c.want)
		}
	}
	if ls := e.must(t, "volume", "ls", "-q"); ls != "" {
		t.Errorf("failed runs left volumes: %q", ls)
	}

	// The tent CLI: volume verbs and --mount.
	e.tentOK(t, "volume", "create", "--label", "k=v", "viacli")
	if out := e.tentOK(t, "run", "--rm", "--mount", "type=volume,source=viacli,target=/m", "busybox", "sh", "-c", "echo x > /m/y; cat /m/y"); out != "x\n" {
		t.Errorf("--mount: %q", out)
	}
	if out := e.tentOK(t, "volume", "ls", "--filter", "label=k=v", "-q"); out != "viacli\n" {
		t.Errorf("tent volume ls --filter label: %q", out)
	}
	if out := e.tentOK(t, "volume", "rm", "viacli"); out != "viacli\n" {
		t.Errorf("tent volume rm: %q", out)
	}
}

// TestEngineVolumesLikeDocker holds what inspect says about mounts to what
// docker says for the same run.
func TestEngineVolumesLikeDocker(t *testing.T) {
	d := startDocker(t)
	e := startTent(t)
	host := t.TempDir()
	format := "{{range .Mounts}}{{.Type}}|{{.Name}}|{{.Destination}}|{{.Driver}}|{{.Mode}}|{{.RW}}|{{.Propagation}};{{end}}"
	for _, args := range [][]string{
		{"-v", "named:/data"},
		{"-v", "named:/data:ro"},
		{"-v", host + ":/host"},
		{"-v", host + ":/host:ro,rslave"},
	} {
		run := append(append([]string{"create"}, args...), "busybox:tent", "true")
		e.must(t, "tag", "busybox", "busybox:tent")
		idT := strings.TrimSpace(e.must(t, run...))
		idD := strings.TrimSpace(d.must(t, run...))
		got, want := e.must(t, "inspect", "-f", format, idT), d.must(t, "inspect", "-f", format, idD)
		if got != want {
			t.Errorf("%v: tent %q, docker %q", args, got, want)
		}
		e.must(t, "rm", "-v", idT)
		d.must(t, "rm", "-v", idD)
	}
}

// TestEngineVolumeOptionsLikeDocker: the local driver's options (type,
// device, o, as mount(8)'s) behave as with dockerd: a tmpfs volume is
// mounted while containers use it and starts empty each time, a bind
// volume shows a host directory, bad options are refused alike.
func TestEngineVolumeOptionsLikeDocker(t *testing.T) {
	d := startDocker(t)
	e := startTent(t)
	e.must(t, "tag", "busybox", "busybox:tent")
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "from-host"), []byte("host file\n"), 0o644)
	type engine interface {
		must(*testing.T, ...string) string
		runIn(io.Reader, ...string) (string, string, int)
	}
	for _, eng := range []struct {
		name string
		e    engine
	}{{"docker", d}, {"tent", e}} {
		t.Run(eng.name, func(t *testing.T) {
			x := eng.e
			x.must(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m,mode=0750", "tv")
			if got := x.must(t, "volume", "inspect", "-f", "{{.Options.type}} {{.Options.device}} {{.Options.o}}", "tv"); got != "tmpfs tmpfs size=1m,mode=0750\n" {
				t.Errorf("inspect options: %q", got)
			}
			out := x.must(t, "run", "--rm", "-v", "tv:/data", "busybox:tent", "sh", "-c",
				`grep " /data " /proc/mounts | cut -d" " -f3; stat -c %a /data; echo kept > /data/f; cat /data/f`)
			if out != "tmpfs\n750\nkept\n" {
				t.Errorf("a container on the tmpfs volume: %q", out)
			}
			if out, _, code := x.runIn(nil, "run", "--rm", "-v", "tv:/data", "busybox:tent", "ls", "/data"); code != 0 || out != "" {
				t.Errorf("the next container: %q (exit %d), want an empty tmpfs", out, code)
			}
			x.must(t, "volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+hostDir, "bv")
			if out := x.must(t, "run", "--rm", "-v", "bv:/h", "busybox:tent", "sh", "-c", "cat /h/from-host; echo "+eng.name+" > /h/from-"+eng.name); out != "host file\n" {
				t.Errorf("a bind volume: %q", out)
			}
			if b, err := os.ReadFile(filepath.Join(hostDir, "from-"+eng.name)); err != nil || string(b) != eng.name+"\n" {
				t.Errorf("written through the bind volume: %q %v", b, err)
			}
			for opts, want := range map[string]string{
				"-o foo=bar":    `create bad: invalid option: "foo"`,
				"-o type=tmpfs": `missing required option: "device"`,
				"-o o=ro":       `missing required option:`,
			} {
				_, errOut, code := x.runIn(nil, append(append([]string{"volume", "create"}, strings.Fields(opts)...), "bad")...)
				if code == 0 || !strings.Contains(errOut, want) {
					t.Errorf("volume create %s: exit %d %q, want %q", opts, code, errOut, want)
				}
			}
			// --mount's volume-opt makes a volume with options.
			if out := x.must(t, "run", "--rm", "--mount", "type=volume,src=mv,dst=/m,volume-opt=type=tmpfs,volume-opt=device=tmpfs",
				"busybox:tent", "sh", "-c", `grep " /m " /proc/mounts | cut -d" " -f3`); out != "tmpfs\n" {
				t.Errorf("--mount with volume-opt: %q", out)
			}
			x.must(t, "volume", "rm", "tv", "bv", "mv")
		})
	}
	// A daemon restarted under a running user counts it again: the volume
	// stays mounted until that container ends.
	e.must(t, "volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "kept")
	e.must(t, "run", "-d", "--name", "user", "-v", "kept:/k", "busybox", "sh", "-c", "echo on > /k/f; sleep 600")
	testutil.Eventually(t, func() bool { return strings.Contains(e.out("exec", "user", "cat", "/k/f"), "on") })
	e.kill9()
	e.start()
	if out := e.must(t, "run", "--rm", "-v", "kept:/k", "busybox", "cat", "/k/f"); out != "on\n" {
		t.Errorf("the volume while its first user runs on after a daemon restart: %q", out)
	}
	e.must(t, "rm", "-f", "user")
	e.must(t, "volume", "rm", "kept")
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), filepath.Join(e.dir, "data", "volumes")) {
		t.Errorf("a tent volume is still mounted:\n%s", b)
	}
}
