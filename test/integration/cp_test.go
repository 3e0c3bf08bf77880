package integration

import (
	"archive/tar"
	"crypto/sha256"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cpScript fills a container with what the copies take: a tree with a
// relative symlink, an owned file, an absolute symlink to a directory.
const cpScript = `mkdir -p /d/sub /dst/exists && echo 1 > /d/f1 && echo 2 > /d/sub/f2 && ln -s f1 /d/lnk && ln -s /d /top && echo x > /file && chown 5:6 /d/f1 && chmod 0640 /d/sub/f2 && touch /ready; exec sleep 1000`

// hostTree describes every path under dir: type, mode, owner, content or
// link target (not times).
func hostTree(t *testing.T, dir string) map[string]string {
	t.Helper()
	tree := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := de.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		desc := fmt.Sprintf("%s %d:%d", fi.Mode(), st.Uid, st.Gid)
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			desc += " -> " + l
		case fi.Mode().IsRegular():
			c, _ := os.ReadFile(p)
			desc += fmt.Sprintf(" %x", sha256.Sum256(c))
		}
		rel, _ := filepath.Rel(dir, p)
		tree[rel] = desc
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return tree
}

func sameTrees(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: %s: docker made it, tent did not", what, p)
		} else if g != w {
			t.Errorf("%s: %s: tent %s, docker %s", what, p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: %s: tent made it, docker did not", what, p)
		}
	}
}

func waitFile(t *testing.T, d *dockerEngine, ctr, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, code := d.run("exec", ctr, "test", "-e", path); code == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared in %s", path, ctr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestCopy runs the same docker cp commands against dockerd and tent and
// compares what they make on the host and in the container, and their
// errors.
func TestCopy(t *testing.T) {
	d := startDocker(t)
	e := startTent(t)
	src := t.TempDir() // what is copied in
	writeTree(t, src, map[string]string{"in/a": "A\n", "in/deep/b": "B\n", "one": "1\n"})
	os.Symlink("a", filepath.Join(src, "in", "alink"))
	os.Chown(filepath.Join(src, "in", "a"), 1234, 4321)
	os.Chmod(filepath.Join(src, "one"), 0o700)
	tentCLI := e.dockerEngine
	tentCLI.cli = tentBin()
	// Every case through the docker CLI against both engines, then
	// through tent's own CLI against tent, held to the docker CLI's
	// results against dockerd.
	for _, via := range []struct {
		name string
		tent *dockerEngine
	}{{"docker CLI", &e.dockerEngine}, {"tent CLI", &tentCLI}} {
		engines := []engine{{"docker", d, "busybox:tent", t.TempDir()}, {"tent", via.tent, "busybox:latest", t.TempDir()}}
		t.Run(via.name, func(t *testing.T) { copyCases(t, engines, src) })
	}
	engines := []engine{{"docker", d, "busybox:tent", t.TempDir()}, {"tent", &e.dockerEngine, "busybox:latest", t.TempDir()}}
	t.Run("stopped container and its volume", func(t *testing.T) {
		for _, en := range engines {
			en.d.must(t, "create", "--name", "stopped", "--network", "none", "-v", "cpvol:/vol", en.img, "cat", "/vol/one", "/made")
			for _, dst := range []string{"stopped:/vol/", "stopped:/made"} {
				if out, code := en.d.run("cp", filepath.Join(src, "one"), dst); code != 0 && dst == "stopped:/vol/" {
					t.Errorf("%s: cp into a stopped container's volume: %s", en.name, out)
				} else if code != 0 {
					t.Errorf("%s: cp into a stopped container: %s", en.name, out)
				}
			}
			if out, code := en.d.run("start", "-a", "stopped"); code != 0 || out != "1\n1\n" {
				t.Errorf("%s: the stopped container, started, read %q (exit %d)", en.name, out, code)
			}
			out := filepath.Join(en.dir, "from-stopped")
			if o, code := en.d.run("cp", "stopped:/vol/one", out); code != 0 {
				t.Errorf("%s: cp out of a stopped container's volume: %s", en.name, o)
			} else if b, _ := os.ReadFile(out); string(b) != "1\n" {
				t.Errorf("%s: copied out %q", en.name, b)
			}
		}
	})
}

// TestCopySymlinkRace: a container swaps a directory of the copied path
// for a symlink to "/" as fast as it can, while files are copied out of
// and into that path. Nothing of the host's is read or written: the
// paths resolve in the container's root, whatever it does.
func TestCopySymlinkRace(t *testing.T) {
	e := startTent(t)
	host := t.TempDir() // exists on the host only
	marker := filepath.Join(host, "marker")
	if err := os.WriteFile(marker, []byte("host secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.must(t, "run", "-d", "--name", "racer", "--network", "none", "busybox", "sh", "-c",
		`mkdir -p /race/d`+host+` && echo inside > /race/d`+host+`/marker && touch /ready && while true; do mv /race/d /race/real && ln -s / /race/d && rm /race/d && mv /race/real /race/d && usleep 2000; done`)
	waitFile(t, &e.dockerEngine, "racer", "/ready")
	out := t.TempDir()
	in := filepath.Join(t.TempDir(), "planted")
	os.WriteFile(in, []byte("planted\n"), 0o644)
	copiedOut, copiedIn := 0, 0
	for i := 0; i < 40; i++ {
		dst := filepath.Join(out, fmt.Sprint(i))
		if _, code := e.run("cp", "racer:/race/d"+marker, dst); code == 0 {
			copiedOut++
			if b, _ := os.ReadFile(dst); string(b) != "inside\n" {
				t.Fatalf("copy %d read %q: the host's file, through the container's symlink", i, b)
			}
		}
		if _, code := e.run("cp", in, "racer:/race/d"+host+"/"); code == 0 {
			copiedIn++
		}
	}
	entries, _ := os.ReadDir(host)
	if len(entries) != 1 {
		t.Errorf("the host directory holds %d entries after the copies in; want only the marker", len(entries))
	}
	if b, _ := os.ReadFile(marker); string(b) != "host secret\n" {
		t.Errorf("the host's marker was overwritten: %q", b)
	}
	t.Logf("copies that found the container's own file: %d out, %d in (of 40 each)", copiedOut, copiedIn)
	if copiedOut == 0 && copiedIn == 0 {
		t.Error("no copy succeeded at all: the race test tested nothing")
	}
}

// engine is an engine of TestCopy, with the client it is driven by.
type engine struct {
	name string
	d    *dockerEngine
	img  string
	dir  string // the host side of its copies
}

// copyCases copies out of and into a container "cc" of each engine
// (docker's first, the reference) and compares what each did; cc is
// removed at the end.
func copyCases(t *testing.T, engines []engine, src string) {
	for _, en := range engines {
		en.d.must(t, "run", "-d", "--name", "cc", "--network", "none", en.img, "sh", "-c", cpScript)
		waitFile(t, en.d, "cc", "/ready")
		for _, sub := range []string{"exists", "exists2", "exists3"} {
			os.MkdirAll(filepath.Join(en.dir, sub), 0o755)
		}
	}

	t.Run("out of a container", func(t *testing.T) {
		for _, args := range [][]string{
			{"cc:/d", "new"},
			{"cc:/d", "exists"},
			{"cc:/d/.", "exists2"},
			{"cc:/file", "file.txt"},
			{"cc:/file", "exists3"},
			{"cc:/top", "toplink"},
			{"-L", "cc:/top", "topdir"},
			{"cc:/d/lnk", "lnk"},
			{"-L", "cc:/d/lnk", "lnk-followed"},
			{"cc:/", "root"},
		} {
			for _, en := range engines {
				a := slices.Clone(args)
				a[len(a)-1] = filepath.Join(en.dir, a[len(a)-1])
				if out, code := en.d.run(append([]string{"cp"}, a...)...); code != 0 {
					t.Errorf("%s: cp %v: %d %s", en.name, args, code, out)
				}
			}
		}
		got, want := hostTree(t, engines[1].dir), hostTree(t, engines[0].dir)
		// Docker's init layer holds /.dockerenv, /etc/mtab and mount
		// points under /dev; tent has no such layer. The files of the
		// engine's mounts (/etc/hosts...) differ in content.
		for _, tree := range []map[string]string{got, want} {
			// /proc and /sys are tent's mounted file systems (not descended
			// into), docker's empty directories of its host's view.
			for _, p := range []string{"root/.dockerenv", "root/etc/mtab", "root/etc/hosts", "root/etc/hostname", "root/etc/resolv.conf", "root/proc", "root/sys"} {
				delete(tree, p)
			}
			for p := range tree {
				if strings.HasPrefix(p, "root/dev/") {
					delete(tree, p)
				}
			}
		}
		sameTrees(t, "cp out", got, want)
	})

	t.Run("to stdout", func(t *testing.T) {
		list := func(en engine) []string {
			cmd := en.d.command("cp", "cc:/d", "-")
			var buf strings.Builder
			cmd.Stdout = &buf
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s: cp to -: %v", en.name, err)
			}
			var names []string
			tr := tar.NewReader(strings.NewReader(buf.String()))
			for {
				h, err := tr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("%s: cp to -: %v", en.name, err)
				}
				names = append(names, fmt.Sprintf("%s %c %o %d:%d %s", h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Linkname))
			}
			slices.Sort(names)
			return names
		}
		if got, want := list(engines[1]), list(engines[0]); !slices.Equal(got, want) {
			t.Errorf("tar of c:/d:\ntent   %q\ndocker %q", got, want)
		}
	})

	t.Run("into a container", func(t *testing.T) {
		for _, args := range [][]string{
			{filepath.Join(src, "in"), "cc:/dst/new"},
			{filepath.Join(src, "in"), "cc:/dst/exists"},
			{filepath.Join(src, "in") + "/.", "cc:/dst/exists"},
			{filepath.Join(src, "one"), "cc:/dst/one"},
			{filepath.Join(src, "one"), "cc:/d/f1"},
			{filepath.Join(src, "one"), "cc:/top"},
			{"-a", filepath.Join(src, "in"), "cc:/dst/owned"},
		} {
			for _, en := range engines {
				if out, code := en.d.run(append([]string{"cp"}, args...)...); code != 0 {
					t.Errorf("%s: cp %v: %d %s", en.name, args, code, out)
				}
			}
		}
		const find = `find /dst /d | sort | while read p; do stat -c '%n %A %u:%g %s %N' "$p"; done`
		if got, want := engines[1].d.must(t, "exec", "cc", "sh", "-c", find), engines[0].d.must(t, "exec", "cc", "sh", "-c", find); got != want {
			t.Errorf("the container's /dst and /d:\ntent:\n%s\ndocker:\n%s", got, want)
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"cc:/nosuch", "x"}, "Could not find the file /nosuch in container cc"},
			{[]string{"nosuchctr:/file", "x"}, "No such container"},
			{[]string{"cc:/file/", "x"}, ""},
			{[]string{filepath.Join(src, "one"), "cc:/nosuchdir/x"}, ""},
			{[]string{filepath.Join(src, "in"), "cc:/file"}, "cannot copy directory"},
			{[]string{filepath.Join(src, "nosuch"), "cc:/dst"}, "no such file or directory"},
		} {
			for _, en := range engines {
				args := slices.Clone(c.args)
				if !strings.Contains(args[len(args)-1], ":") {
					args[len(args)-1] = filepath.Join(en.dir, "err-"+args[len(args)-1])
				}
				out, code := en.d.run(append([]string{"cp"}, args...)...)
				if code == 0 || !strings.Contains(out, c.want) {
					t.Errorf("%s: cp %v: exit %d, %q; want a failure with %q", en.name, c.args, code, out, c.want)
				}
			}
		}
	})

	for _, en := range engines {
		en.d.must(t, "rm", "-f", "cc")
	}
}
