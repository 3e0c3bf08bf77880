package integration

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testRegistry is Debian's docker-registry (the distribution registry)
// on a free loopback port, with its storage in a temporary directory.
type testRegistry struct {
	t      *testing.T
	addr   string
	config string
	cmd    *exec.Cmd
	log    *os.File
}

// startRegistry starts the registry; extra is added to its config.yml.
func startRegistry(t *testing.T, extra ...string) *testRegistry {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Skip("docker-registry not installed (apt-get install docker-registry)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	dir := t.TempDir()
	r := &testRegistry{t: t, addr: addr, config: filepath.Join(dir, "config.yml")}
	conf := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "data"), addr) + strings.Join(extra, "")
	if err := os.WriteFile(r.config, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if r.log, err = os.Create(filepath.Join(dir, "registry.log")); err != nil {
		t.Fatal(err)
	}
	r.start()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			b, _ := os.ReadFile(r.log.Name())
			t.Logf("registry log (tail):\n%s", tail(string(b), 20))
		}
		r.log.Close()
	})
	return r
}

func (r *testRegistry) start() {
	r.t.Helper()
	r.cmd = exec.Command("docker-registry", "serve", r.config)
	r.cmd.Stdout, r.cmd.Stderr = r.log, r.log
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			return
		}
	}
	r.t.Fatal("docker-registry did not listen within 10s")
}

func (r *testRegistry) stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// storeFiles lists the files under the daemon's content store and its
// ingest area, to show that a failed pull leaves nothing behind.
func (e *tentEngine) storeFiles(t *testing.T) []string {
	t.Helper()
	var out []string
	root := filepath.Join(e.dir, "data", "content")
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			out = append(out, strings.TrimPrefix(p, root))
		}
		return nil
	})
	return out
}

// TestRegistryPullPush moves images between docker, tent and a real
// registry in both directions, with the errors a user meets on the way.
func TestRegistryPullPush(t *testing.T) {
	reg := startRegistry(t)
	dk := startDocker(t)
	e := startTent(t)

	// docker builds an image of several layers: one deletes a file of a
	// lower one, another replaces a directory (an opaque whiteout).
	ctxDir := t.TempDir()
	dockerfile := `FROM busybox:tent
RUN mkdir -p /data /opq && echo one > /data/keep && echo gone > /data/gone && echo old > /opq/old && dd if=/dev/urandom of=/data/big bs=1k count=2048 2>/dev/null
RUN rm /data/gone && echo two > /data/two
RUN rm -rf /opq && mkdir /opq && echo new > /opq/new
`
	if err := os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		t.Fatal(err)
	}
	multi := reg.addr + "/multi:1"
	build := dk.command("build", "--network", "none", "-t", multi, ctxDir)
	build.Env = append(build.Env, "DOCKER_BUILDKIT=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("docker build: %v\n%s", err, out)
	}
	dk.must(t, "push", multi)
	dockerID := strings.TrimSpace(dk.must(t, "inspect", "-f", "{{.Id}}", multi))

	t.Run("pull what docker pushed", func(t *testing.T) {
		out := e.must(t, "pull", multi)
		for _, want := range []string{"Pulling from multi", "Pull complete", "Digest: sha256:", "Status: Downloaded newer image for " + multi} {
			if !strings.Contains(out, want) {
				t.Errorf("pull output lacks %q:\n%s", want, out)
			}
		}
		if id := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", multi)); id != dockerID {
			t.Errorf("image ID %s, docker's is %s", id, dockerID)
		}
		got := e.must(t, "run", "--rm", multi, "sh", "-c", "cat /data/keep /data/two; ls /data /opq; test -e /data/gone && echo GONE-IS-BACK; test -e /opq/old && echo OLD-IS-BACK; true")
		if got != "one\ntwo\n/data:\nbig\nkeep\ntwo\n\n/opq:\nnew\n" {
			t.Errorf("files of the pulled image:\n%s", got)
		}
		if out := e.must(t, "pull", multi); !strings.Contains(out, "Image is up to date for "+multi) {
			t.Errorf("second pull:\n%s", out)
		}
		digests := e.must(t, "inspect", "-f", "{{json .RepoDigests}}", multi)
		if !strings.Contains(digests, reg.addr+"/multi@sha256:") {
			t.Errorf("RepoDigests = %s", digests)
		}
	})

	t.Run("push what docker then pulls and runs", func(t *testing.T) {
		own := reg.addr + "/fromtent:v1"
		e.must(t, "tag", "busybox:latest", own)
		out := e.must(t, "push", own)
		if !strings.Contains(out, "Pushed") || !strings.Contains(out, "v1: digest: sha256:") {
			t.Errorf("push output:\n%s", out)
		}
		if out := e.must(t, "push", own); !strings.Contains(out, "Layer already exists") {
			t.Errorf("second push did not skip the layer:\n%s", out)
		}
		dk.must(t, "pull", own)
		if got := dk.must(t, "run", "--rm", own, "echo", "hi from tent's push"); got != "hi from tent's push\n" {
			t.Errorf("docker ran the pushed image: %q", got)
		}
		// The pulled image under another name of the same registry: its
		// layers are mounted, not uploaded again.
		other := reg.addr + "/copy:1"
		e.must(t, "tag", multi, other)
		if out := e.must(t, "push", other); !strings.Contains(out, "Mounted from multi") {
			t.Errorf("push to a sibling repository did not mount:\n%s", out)
		}
		if id := strings.TrimSpace(dk.must(t, "pull", "-q", other)); id == "" {
			t.Error("docker could not pull the mounted copy")
		}
	})

	t.Run("skopeo reads what tent pushed", func(t *testing.T) {
		if _, err := exec.LookPath("skopeo"); err != nil {
			t.Skip("skopeo not installed")
		}
		dst := filepath.Join(t.TempDir(), "oci")
		out, err := exec.Command("skopeo", "copy", "--src-tls-verify=false", "docker://"+reg.addr+"/fromtent:v1", "oci:"+dst+":v1").CombinedOutput()
		if err != nil {
			t.Fatalf("skopeo copy: %v\n%s", err, out)
		}
		if _, err := os.Stat(filepath.Join(dst, "index.json")); err != nil {
			t.Errorf("skopeo wrote no OCI layout: %v", err)
		}
	})

	t.Run("errors", func(t *testing.T) {
		before := e.out("images", "-q")
		files := len(e.storeFiles(t))
		out, code := e.run("pull", reg.addr+"/missing:1")
		if code == 0 || !strings.Contains(out, "manifest for "+reg.addr+"/missing:1 not found") {
			t.Errorf("pull of a missing image: exit %d: %s", code, out)
		}
		out, code = e.run("pull", reg.addr+"/multi@sha256:"+strings.Repeat("0", 64))
		if code == 0 || !strings.Contains(out, "not found") {
			t.Errorf("pull of a missing digest: exit %d: %s", code, out)
		}
		out, code = e.run("push", reg.addr+"/nosuch:1")
		if code == 0 || !strings.Contains(out, "does not exist locally") {
			t.Errorf("push of a missing image: exit %d: %s", code, out)
		}
		if after := e.out("images", "-q"); after != before {
			t.Errorf("images changed by failed pulls:\n%s\nthen\n%s", before, after)
		}
		if n := len(e.storeFiles(t)); n != files {
			t.Errorf("content store had %d files, has %d after failed pulls", files, n)
		}
	})

	t.Run("registry dies mid-pull", func(t *testing.T) {
		big := reg.addr + "/big:1"
		ctx := t.TempDir()
		os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte("FROM busybox:tent\nRUN dd if=/dev/urandom of=/big bs=1M count=64 2>/dev/null\n"), 0o644)
		b := dk.command("build", "--network", "none", "-t", big, ctx)
		b.Env = append(b.Env, "DOCKER_BUILDKIT=0")
		if out, err := b.CombinedOutput(); err != nil {
			t.Fatalf("docker build: %v\n%s", err, out)
		}
		dk.must(t, "push", big)
		before := e.out("images", "-q")
		files := len(e.storeFiles(t))

		// The registry, seen through a proxy that dies after 1 MiB.
		proxy := startDyingProxy(t, reg.addr, 1<<20)
		viaProxy := proxy.addr + "/big:1"
		out, code := e.run("pull", viaProxy)
		if code == 0 {
			t.Fatalf("pull succeeded with the registry gone:\n%s", out)
		}
		if !strings.Contains(out, "Pulling fs layer") {
			t.Errorf("the pull failed before it began:\n%s", out)
		}
		if after := e.out("images", "-q"); after != before {
			t.Errorf("a failed pull changed the images:\n%s", after)
		}
		if n := len(e.storeFiles(t)); n != files {
			t.Errorf("content store had %d files, has %d after the failed pull", files, n)
		}
		proxy.revive()
		if out := e.must(t, "pull", viaProxy); !strings.Contains(out, "Downloaded newer image") {
			t.Errorf("pull after the registry came back:\n%s", out)
		}
	})
}

// dyingProxy forwards TCP to a registry until limit bytes have come back,
// then closes every connection and stops listening (until revive).
type dyingProxy struct {
	t        *testing.T
	addr     string
	upstream string
	mu       sync.Mutex
	l        net.Listener
	conns    []net.Conn
	left     int64
}

func startDyingProxy(t *testing.T, upstream string, limit int64) *dyingProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dyingProxy{t: t, addr: l.Addr().String(), upstream: upstream, left: limit}
	p.serve(l)
	t.Cleanup(p.die)
	return p
}

func (p *dyingProxy) serve(l net.Listener) {
	p.l = l
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", p.upstream)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go io.Copy(u, c)
			go p.back(c, u)
		}
	}()
}

// back copies the registry's answer, dying once the budget is spent.
func (p *dyingProxy) back(c, u net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := u.Read(buf)
		if n > 0 {
			p.mu.Lock()
			left := p.left
			p.left -= int64(n)
			p.mu.Unlock()
			if left <= 0 {
				p.die()
				return
			}
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			c.Close()
			return
		}
	}
}

func (p *dyingProxy) die() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.l != nil {
		p.l.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// revive listens again on the same address, with no limit.
func (p *dyingProxy) revive() {
	l, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.left = 1 << 62
	p.mu.Unlock()
	p.serve(l)
}
