package integration

import (
	"archive/tar"
	"bytes"
	"io"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// changeScript adds, modifies and deletes files, a symlink and a
// directory tree in a busybox container.
const changeScript = `mkdir -p /new/sub && echo n > /new/sub/f && echo m >> /etc/passwd && rm -rf /root /etc/group && touch /tmp/t && ln -s /new/sub/f /lnk && mkdir /gone && rmdir /gone`

// sortedLines is s's non-empty lines, sorted.
func sortedLines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	sort.Strings(out)
	return out
}

// exportList is the sorted list of names in the tar that `export` writes.
func exportList(t *testing.T, d *dockerEngine, ref string) []string {
	t.Helper()
	cmd := d.command("export", ref)
	var buf bytes.Buffer
	cmd.Stdout = &buf
	if err := cmd.Run(); err != nil {
		t.Fatalf("export %s: %v", ref, err)
	}
	var names []string
	tr := tar.NewReader(&buf)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("export %s: %v", ref, err)
		}
		names = append(names, strings.TrimSuffix(h.Name, "/"))
	}
	sort.Strings(names)
	return names
}

// TestContainerDiffExportCommit: diff, export and commit of one change
// script through the docker CLI, against dockerd's answers.
func TestContainerDiffExportCommit(t *testing.T) {
	d := startDocker(t)
	e := startTent(t)
	images := map[*dockerEngine]string{d: "busybox:tent", &e.dockerEngine: "busybox:latest"}
	for eng, img := range images {
		eng.must(t, "run", "--name", "changed", "--network", "none", img, "sh", "-c", changeScript)
	}

	t.Run("diff", func(t *testing.T) {
		want, got := sortedLines(d.must(t, "diff", "changed")), sortedLines(e.must(t, "diff", "changed"))
		if !slices.Equal(got, want) {
			t.Errorf("diff:\ntent   %q\ndocker %q", got, want)
		}
		for _, l := range []string{"A /new/sub/f", "C /etc/passwd", "D /root", "D /etc/group", "A /lnk"} {
			if !slices.Contains(got, l) {
				t.Errorf("diff lacks %q: %q", l, got)
			}
		}
		if slices.Contains(got, "A /gone") {
			t.Errorf("diff shows a directory made and removed: %q", got)
		}
		// A container that changed nothing: the directory holding the
		// engine's /etc files is none of its changes (docker's init layer).
		for eng, img := range images {
			eng.must(t, "run", "--name", "untouched", "--network", "none", img, "true")
		}
		if want, got := d.must(t, "diff", "untouched"), e.must(t, "diff", "untouched"); got != want {
			t.Errorf("diff of a container that changed nothing: tent %q, docker %q", got, want)
		}
	})

	t.Run("export", func(t *testing.T) {
		// docker's init layer (a layer between the image's and the
		// container's) has files tent does not make: /.dockerenv, an
		// /etc/mtab link and the mount points under /dev (a tmpfs of the
		// container's in both engines).
		initLayer := []string{".dockerenv", "dev/console", "dev/pts", "dev/shm", "etc/mtab"}
		want := slices.DeleteFunc(exportList(t, d, "changed"), func(n string) bool { return slices.Contains(initLayer, n) })
		got := exportList(t, &e.dockerEngine, "changed")
		if !slices.Equal(got, want) {
			t.Errorf("export lists:\ntent   %q\ndocker %q", got, want)
		}
	})

	t.Run("commit", func(t *testing.T) {
		for eng := range images {
			eng.must(t, "commit", "-a", "me <me@x>", "-m", "made by hand", "-c", `CMD ["cat", "/new/sub/f"]`,
				"-c", "ENV A=b", "-c", "WORKDIR /new", "-c", "LABEL k=v", "-c", "EXPOSE 80", "changed", "committed:1")
		}
		if out := e.must(t, "run", "--rm", "--network", "none", "committed:1"); out != "n\n" {
			t.Errorf("the committed image ran %q, want its file's n", out)
		}
		if out := e.must(t, "run", "--rm", "--network", "none", "committed:1", "sh", "-c", "pwd; echo $A; ls /root /etc/group 2>&1 | wc -l; tail -1 /etc/passwd"); out != "/new\nb\n2\nm\n" {
			t.Errorf("in the committed image: %q", out)
		}
		const f = `{{json .Config.Cmd}} {{json .Config.Env}} {{.Config.WorkingDir}} {{json .Config.Labels}} {{json .Config.ExposedPorts}} {{.Author}} {{.Comment}} {{len .RootFS.Layers}}`
		want, got := d.must(t, "inspect", "-f", f, "committed:1"), e.must(t, "inspect", "-f", f, "committed:1")
		if got != want {
			t.Errorf("committed image:\ntent   %s\ndocker %s", got, want)
		}
		const h = `{{.CreatedBy}}|{{.Comment}}`
		want, got = d.must(t, "history", "--no-trunc", "--format", h, "committed:1"), e.must(t, "history", "--no-trunc", "--format", h, "committed:1")
		if first := strings.SplitN(got, "\n", 2)[0]; first != strings.SplitN(want, "\n", 2)[0] {
			t.Errorf("history's top entry: tent %q, docker %q", first, strings.SplitN(want, "\n", 2)[0])
		}
		// An image committed from a committed image's container keeps
		// both layers.
		e.must(t, "run", "--name", "again", "--network", "none", "committed:1", "sh", "-c", "echo 2 > /second")
		e.must(t, "commit", "again", "committed:2")
		if out := e.must(t, "run", "--rm", "--network", "none", "committed:2", "cat", "/new/sub/f", "/second"); out != "n\n2\n" {
			t.Errorf("two commits deep: %q", out)
		}
	})

	t.Run("a committed image pushes", func(t *testing.T) {
		reg := startRegistry(t)
		ref := reg.addr + "/committed:1"
		e.must(t, "tag", "committed:1", ref)
		e.must(t, "push", ref)
		d.must(t, "pull", ref)
		if out := d.must(t, "run", "--rm", "--network", "none", ref); out != "n\n" {
			t.Errorf("docker ran the pushed image: %q", out)
		}
	})

	t.Run("commit of a running container", func(t *testing.T) {
		e.must(t, "run", "-d", "--name", "live", "--network", "none", "busybox", "sh", "-c", "echo r > /r; exec sleep 1000")
		deadline := time.Now().Add(10 * time.Second)
		for e.out("exec", "live", "cat", "/r") != "r\n" {
			if time.Now().After(deadline) {
				t.Fatal("the container did not write /r")
			}
			time.Sleep(50 * time.Millisecond)
		}
		e.must(t, "commit", "live", "live:img")
		e.must(t, "commit", "--pause=false", "live", "live:nopause")
		if st := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.State.Status}}", "live")); st != "running" {
			t.Errorf("after commit the container is %s, want running (unpaused)", st)
		}
		for _, img := range []string{"live:img", "live:nopause"} {
			if out := e.must(t, "run", "--rm", "--network", "none", img, "cat", "/r"); out != "r\n" {
				t.Errorf("%s: /r is %q", img, out)
			}
		}
		// The command of the container became the image's CMD.
		if out := e.must(t, "inspect", "-f", "{{json .Config.Cmd}}", "live:img"); !strings.Contains(out, "exec sleep 1000") {
			t.Errorf("committed CMD %s", out)
		}
	})

	t.Run("tent CLI", func(t *testing.T) {
		tent := func(args ...string) (string, string, int) {
			cmd := exec.Command(tentBin(), append([]string{"-H", e.host}, args...)...)
			return capture(t, cmd, nil)
		}
		out, errOut, code := tent("diff", "changed")
		if code != 0 || !slices.Equal(sortedLines(out), sortedLines(e.must(t, "diff", "changed"))) {
			t.Errorf("tent diff: %d %q %s", code, out, errOut)
		}
		id, errOut, code := tent("commit", "-c", "ENV Z=1", "changed", "bytent")
		if code != 0 || !strings.HasPrefix(id, "sha256:") {
			t.Errorf("tent commit: %d %q %s", code, id, errOut)
		}
		if out := e.must(t, "inspect", "-f", "{{json .Config.Env}}", "bytent"); !strings.Contains(out, "Z=1") {
			t.Errorf("tent commit -c: env %s", out)
		}
		out, errOut, code = tent("export", "changed")
		if code != 0 || !strings.Contains(out, "new/sub/f") {
			t.Errorf("tent export: %d %d bytes %s", code, len(out), errOut)
		}
	})

	t.Run("bad input", func(t *testing.T) {
		before := e.must(t, "images", "-aq")
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"diff", "nosuch"}, "No such container: nosuch"},
			{[]string{"export", "nosuch"}, "No such container: nosuch"},
			{[]string{"commit", "nosuch"}, "No such container: nosuch"},
			{[]string{"commit", "-c", "FROM busybox", "changed"}, "FROM"},
			{[]string{"commit", "-c", "NOSUCH x", "changed"}, "NOSUCH"},
			{[]string{"commit", "changed", "Bad:Name"}, "invalid reference format"},
		} {
			out, code := e.run(c.args...)
			if code == 0 || !strings.Contains(out, c.want) {
				t.Errorf("docker %v: exit %d, %q; want an error with %q", c.args, code, out, c.want)
			}
		}
		if after := e.must(t, "images", "-aq"); after != before {
			t.Errorf("failed commits left images: before\n%s\nafter\n%s", before, after)
		}
	})
}
