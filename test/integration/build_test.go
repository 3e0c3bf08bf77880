package integration

import (
	"archive/tar"
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/archive"
)

// writeTree writes files (path -> content) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// tarOf makes a tar archive of files (path -> content), for ADD.
func tarOf(t *testing.T, files map[string]string) string {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, content := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(content)), Typeflag: tar.TypeReg, Uid: 7, Gid: 8})
		tw.Write([]byte(content))
	}
	tw.Close()
	return buf.String()
}

// buildOut runs docker build with DOCKER_BUILDKIT=0 (the legacy builder
// protocol, which the docker CLI also falls back to without buildx).
func (d *dockerEngine) build(args ...string) (string, string, int) {
	cmd := d.command(append([]string{"build"}, args...)...)
	cmd.Env = append(cmd.Env, "DOCKER_BUILDKIT=0")
	return capture(d.t, cmd, nil)
}

func imageID(t *testing.T, e *tentEngine, ref string) string {
	t.Helper()
	return strings.TrimSpace(e.must(t, "image", "inspect", "-f", "{{.Id}}", ref))
}

// noStepsLeft checks that a build left no container behind.
func noStepsLeft(t *testing.T, e *tentEngine) {
	t.Helper()
	if ids := strings.Fields(e.out("ps", "-aq")); len(ids) > 0 {
		t.Errorf("containers left by builds: %v", ids)
	}
}

const allInstructions = `ARG BASE=busybox
FROM ${BASE}:latest AS base
LABEL stage=base
MAINTAINER someone
FROM base
ARG WHO=world
ENV GREETING=hello
WORKDIR /app
COPY --chown=1000:1000 --chmod=0640 a.txt ./
COPY sub/ /app/sub/
COPY . /ctx/
ADD files.tar /opt/
COPY <<EOF /app/heredoc.txt
inline $WHO
EOF
RUN echo "$GREETING $WHO" > out.txt && rm -f /bin/vi && mkdir -p /data && echo keep > /data/x
RUN <<EOF
echo script > /app/script.txt
EOF
SHELL ["/bin/sh", "-c"]
USER 1000:1000
EXPOSE 80 53/udp
VOLUME /data
STOPSIGNAL SIGINT
HEALTHCHECK --interval=5s CMD true
ONBUILD USER 0
ONBUILD RUN echo triggered-$WHO > /onbuild
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["cat /app/out.txt"]
`

// TestBuildInstructions builds, through the docker CLI, a Dockerfile with
// every instruction and checks the image's files, config, history, cache
// and how it runs.
func TestBuildInstructions(t *testing.T) {
	e := startTent(t)
	ctx := t.TempDir()
	writeTree(t, ctx, map[string]string{
		"Dockerfile": allInstructions, "a.txt": "A\n", "sub/s.txt": "S\n", "sub/deep/d.txt": "D\n",
		"ignored.log": "no\n", ".dockerignore": "*.log\n",
		"files.tar": tarOf(t, map[string]string{"inside.txt": "from the tarball\n"}),
	})
	out, errOut, code := e.build("-t", "app", "--build-arg", "WHO=tent", ctx)
	if code != 0 || !strings.Contains(out, "Successfully tagged app:latest") {
		t.Fatalf("build: exit %d\n%s\n%s", code, out, errOut)
	}
	noStepsLeft(t, e)
	if got := e.must(t, "run", "--rm", "app"); got != "hello tent\n" {
		t.Errorf("run: %q, want the CMD's output", got)
	}
	got := e.must(t, "run", "--rm", "-u", "0", "--entrypoint", "sh", "app", "-c",
		`stat -c "%u:%g %a" /app/a.txt; cat /app/sub/s.txt /app/sub/deep/d.txt /opt/inside.txt /app/heredoc.txt /app/script.txt; `+
			`stat -c "%u:%g %a" /opt/inside.txt; ls /bin/vi 2>&1; ls /ctx; id -u; pwd; cat /data/x`)
	want := "1000:1000 640\nS\nD\nfrom the tarball\ninline tent\nscript\n7:8 600\nls: /bin/vi: No such file or directory\n" +
		"Dockerfile\na.txt\nfiles.tar\nsub\n0\n/app\nkeep\n"
	if got != want {
		t.Errorf("the image's files:\n%s\nwant:\n%s", got, want)
	}
	var cfg struct {
		Env          []string
		Cmd          []string
		Entrypoint   []string
		WorkingDir   string
		User         string
		Labels       map[string]string
		ExposedPorts map[string]any
		Volumes      map[string]any
		StopSignal   string
		Healthcheck  struct{ Test []string }
		OnBuild      []string
		Shell        []string
	}
	if err := json.Unmarshal([]byte(e.must(t, "image", "inspect", "-f", "{{json .Config}}", "app")), &cfg); err != nil {
		t.Fatal(err)
	}
	if !contains(cfg.Env, "GREETING=hello") || hasPrefix(cfg.Env, "WHO=") || cfg.WorkingDir != "/app" || cfg.User != "1000:1000" ||
		cfg.Labels["stage"] != "base" || cfg.ExposedPorts["80/tcp"] == nil || cfg.ExposedPorts["53/udp"] == nil ||
		cfg.Volumes["/data"] == nil || cfg.StopSignal != "SIGINT" || strings.Join(cfg.Healthcheck.Test, " ") != "CMD-SHELL true" ||
		len(cfg.OnBuild) != 2 || strings.Join(cfg.Shell, " ") != "/bin/sh -c" ||
		strings.Join(cfg.Entrypoint, " ") != "/bin/sh -c" || strings.Join(cfg.Cmd, " ") != "cat /app/out.txt" {
		t.Errorf("config: %+v", cfg)
	}
	history := e.must(t, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "app")
	if !strings.Contains(history, `RUN |1 WHO=tent /bin/sh -c echo "$GREETING $WHO"`) || !strings.Contains(history, "ENV GREETING=hello") {
		t.Errorf("history:\n%s", history)
	}

	t.Run("cached rebuild", func(t *testing.T) {
		id := imageID(t, e, "app")
		// The cache outlives the daemon.
		e.stop()
		e.start()
		out, _, code := e.build("-t", "app", "--build-arg", "WHO=tent", ctx)
		if code != 0 || strings.Contains(out, "Running in") || imageID(t, e, "app") != id {
			t.Errorf("a rebuild with nothing changed (after a daemon restart) ran a step or made another image (exit %d):\n%s", code, out)
		}
		writeTree(t, ctx, map[string]string{"sub/s.txt": "changed\n"})
		out, _, code = e.build("-t", "app", "--build-arg", "WHO=tent", ctx)
		if code != 0 || strings.Count(out, "Using cache") != 5 || !strings.Contains(out, "Running in") {
			t.Errorf("after a change, the steps before it are cached and those from it on run (exit %d):\n%s", code, out)
		}
		if got := e.must(t, "run", "--rm", "app", "cat /app/sub/s.txt"); got != "changed\n" {
			t.Errorf("after the change: %q", got)
		}
		noStepsLeft(t, e)
	})
	t.Run("onbuild", func(t *testing.T) {
		child := t.TempDir()
		writeTree(t, child, map[string]string{"Dockerfile": "FROM app\nARG WHO=child\n"})
		out, _, code := e.build("-t", "child", child)
		if code != 0 || !strings.Contains(out, "Executing 2 build triggers") {
			t.Fatalf("child build: exit %d\n%s", code, out)
		}
		if got := e.must(t, "run", "--rm", "child", "cat /onbuild"); got != "triggered-\n" {
			t.Errorf("trigger's file: %q (a trigger runs with the child's ARGs, declared after it)", got)
		}
		if got := e.must(t, "image", "inspect", "-f", "{{json .Config.OnBuild}}", "child"); strings.TrimSpace(got) != "null" {
			t.Errorf("the child inherited the triggers: %s", got)
		}
	})
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasPrefix(list []string, p string) bool {
	for _, x := range list {
		if strings.HasPrefix(x, p) {
			return true
		}
	}
	return false
}

// TestBuildStages: stages by name and index, an unused stage skipped,
// --target, and RUN's mounts (cache across builds, a secret that reaches
// no layer, a bind of the context), through tent's own CLI.
func TestBuildStages(t *testing.T) {
	e := startTent(t)
	ctx := t.TempDir()
	writeTree(t, ctx, map[string]string{"Dockerfile.multi": `FROM busybox AS build
RUN echo built > /artifact
FROM busybox AS unused
RUN exit 1
FROM busybox
COPY --from=build /artifact /artifact
COPY --from=0 /artifact /again
RUN --mount=type=cache,target=/cache echo run >> /cache/runs && wc -l < /cache/runs > /runs
RUN --mount=type=secret,id=token cat /run/secrets/token | wc -c > /secret-size
RUN --mount=type=bind,source=data.txt,target=/mnt/data.txt cp /mnt/data.txt /data-copy
RUN --mount=type=bind,target=/ctx,rw echo scratch > /ctx/data.txt && touch /ctx/new && cat /ctx/data.txt > /rw-saw
RUN --mount=type=bind,source=data.txt,target=/one,rw echo mine >> /one && cat /one > /rw-file
RUN --mount=type=bind,from=build,target=/b,rw rm /b/artifact && test ! -e /b/artifact && echo gone > /rw-stage
RUN --mount=type=bind,from=build,target=/b cat /b/artifact > /stage-still
RUN --mount=type=bind,target=/ctx ls /ctx > /after-rw && cat /ctx/data.txt >> /after-rw
`, "data.txt": "bound\n"})
	secret := filepath.Join(t.TempDir(), "token")
	os.WriteFile(secret, []byte("s3cr3t-value"), 0o600)
	tent := func(args ...string) (string, string, int) {
		return capture(t, exec.Command(tentBin(), append([]string{"-H", e.host}, args...)...), nil)
	}
	iid := filepath.Join(t.TempDir(), "iid")
	out, errOut, code := tent("build", "-q", "--iidfile", iid, "-t", "multi", "-f", filepath.Join(ctx, "Dockerfile.multi"), "--secret", "id=token,src="+secret, ctx)
	if code != 0 {
		t.Fatalf("build: exit %d\n%s\n%s", code, out, errOut)
	}
	id, _ := os.ReadFile(iid)
	if strings.TrimSpace(out) != string(id) || !strings.HasPrefix(string(id), "sha256:") {
		t.Errorf("-q printed %q, --iidfile has %q: want the image ID in both", out, id)
	}
	got := e.must(t, "run", "--rm", "multi", "cat", "/artifact", "/again", "/runs", "/secret-size", "/data-copy")
	if got != "built\nbuilt\n1\n12\nbound\n" {
		t.Errorf("files: %q", got)
	}
	// A rw bind: the step sees its writes, the next step and the
	// context do not (BuildKit's semantics), nor does the stage bound.
	got = e.must(t, "run", "--rm", "multi", "cat", "/rw-saw", "/rw-file", "/rw-stage", "/stage-still", "/after-rw")
	if got != "scratch\nbound\nmine\ngone\nbuilt\nDockerfile.multi\ndata.txt\nbound\n" {
		t.Errorf("rw binds: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(ctx, "data.txt")); string(b) != "bound\n" {
		t.Errorf("a rw bind wrote into the context: %q", b)
	}
	if _, code := e.run("run", "--rm", "multi", "ls", "/run/secrets/token"); code == 0 {
		t.Errorf("the secret's mount point is in the image")
	}
	save := e.command("save", "multi")
	var img bytes.Buffer
	save.Stdout = &img
	if err := save.Run(); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(img.Bytes(), []byte("s3cr3t-value")) {
		t.Errorf("the secret is in the saved image")
	}
	// The cache mount outlives the build: a build without the step cache
	// runs the step again and finds the first run's file.
	if _, errOut, code := tent("build", "-q", "--no-cache", "-t", "multi", "-f", filepath.Join(ctx, "Dockerfile.multi"), "--secret", "id=token,src="+secret, ctx); code != 0 {
		t.Fatalf("rebuild: %s", errOut)
	}
	if got := e.must(t, "run", "--rm", "multi", "cat", "/runs"); got != "2\n" {
		t.Errorf("cache mount after a second build: %q runs, want 2", got)
	}
	if _, errOut, code := tent("build", "-q", "--target", "build", "-t", "first", "-f", filepath.Join(ctx, "Dockerfile.multi"), ctx); code != 0 {
		t.Fatalf("--target: %s", errOut)
	}
	if _, code := e.run("run", "--rm", "first", "ls", "/again"); code == 0 {
		t.Errorf("--target build went past its stage")
	}
	out, _, code = tent("builder", "prune", "-f")
	if code != 0 || !strings.Contains(out, "Total reclaimed space") {
		t.Errorf("builder prune: exit %d %s", code, out)
	}
	if got := e.must(t, "run", "--rm", "multi", "cat", "/artifact"); got != "built\n" {
		t.Errorf("after builder prune the built image lost its files: %q", got)
	}
	noStepsLeft(t, e)
}

// TestBuildBadInput: each mistake gets a clear error and a failing exit
// status, no image is tagged, no step container is left.
func TestBuildBadInput(t *testing.T) {
	e := startTent(t)
	cases := []struct {
		name, dockerfile string
		code             int
		want             string
	}{
		{"syntax", "FROM busybox\nFOO bar\n", 1, "line 2: unknown instruction: FOO"},
		{"failing run", "FROM busybox\nRUN echo failing-step; exit 3\n", 3, "returned a non-zero code: 3"},
		{"missing source", "FROM busybox\nCOPY nope.txt /x\n", 1, "nope.txt"},
		{"outside the context", "FROM busybox\nCOPY ../secret /x\n", 1, "outside the build context"},
		{"missing base image", "FROM 127.0.0.1:1/nosuch:latest\n", 1, "127.0.0.1:1/nosuch"},
		{"unknown stage target", "FROM busybox AS one\n", 1, "target"},
		{"bad chmod", "FROM busybox\nCOPY Dockerfile --chmod=999 /x\n", 1, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx := t.TempDir()
			writeTree(t, ctx, map[string]string{"Dockerfile": c.dockerfile})
			args := []string{"-t", "bad", ctx}
			if c.name == "unknown stage target" {
				args = append([]string{"--target", "two"}, args...)
			}
			out, errOut, code := e.build(args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("exit %d, want %d; stderr %q, want it to say %q\n%s", code, c.code, errOut, c.want, out)
			}
			if c.name == "failing run" && !strings.Contains(out, "failing-step") {
				t.Errorf("the failing step's output is not shown:\n%s", out)
			}
			if _, code := e.run("image", "inspect", "bad"); code == 0 {
				t.Errorf("a failed build tagged an image")
			}
			noStepsLeft(t, e)
		})
	}
}

// TestBuildADDFromURL: ADD of a URL (a server of the test's on loopback)
// stores the file with mode 0600, and --checksum checks it.
func TestBuildADDFromURL(t *testing.T) {
	e := startTent(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "downloaded\n") }))
	defer srv.Close()
	sum := sha256.Sum256([]byte("downloaded\n"))
	ctx := t.TempDir()
	writeTree(t, ctx, map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%s %s/file.txt /dl/\n", hex.EncodeToString(sum[:]), srv.URL)})
	if out, errOut, code := e.build("-t", "dl", ctx); code != 0 {
		t.Fatalf("build: %s %s", out, errOut)
	}
	if got := e.must(t, "run", "--rm", "dl", "sh", "-c", `stat -c %a /dl/file.txt; cat /dl/file.txt`); got != "600\ndownloaded\n" {
		t.Errorf("downloaded file: %q", got)
	}
	writeTree(t, ctx, map[string]string{"Dockerfile": fmt.Sprintf("FROM busybox\nADD --checksum=sha256:%064d %s/file.txt /dl/\n", 0, srv.URL)})
	if _, errOut, code := e.build("-t", "dl2", ctx); code == 0 || !strings.Contains(errOut, "checksum") {
		t.Errorf("a wrong checksum: exit %d %s", code, errOut)
	}
}

// TestBuildTreeLikeDocker builds one Dockerfile with dockerd's builder
// and tent's and compares the images' file trees: paths, types, modes,
// owners, link targets and content.
func TestBuildTreeLikeDocker(t *testing.T) {
	d := startDocker(t)
	e := startTent(t)
	ctx := t.TempDir()
	writeTree(t, ctx, map[string]string{"Dockerfile": `ARG BASE
FROM $BASE
WORKDIR /srv/app
COPY . .
COPY sub /flat/
COPY a.txt /renamed.txt
RUN mkdir -p /var/made && echo x > /var/made/f && ln -s /var/made/f /var/link && chmod 0700 /var/made && rm -rf /etc/passwd /home && chown 1:2 /var/made/f && mkdir /mine && chown 1000 /mine
USER 1000
RUN touch /mine/by-user
`, "a.txt": "A\n", "sub/b.txt": "B\n", "sub/deeper/c.txt": "C\n"})
	os.Chmod(filepath.Join(ctx, "a.txt"), 0o755)
	if out, errOut, code := d.build("--network", "none", "--build-arg", "BASE=busybox:tent", "-t", "cmp", ctx); code != 0 {
		t.Fatalf("docker build: %s %s", out, errOut)
	}
	if out, errOut, code := e.build("--build-arg", "BASE=busybox:latest", "-t", "cmp", ctx); code != 0 {
		t.Fatalf("tent build: %s %s", out, errOut)
	}
	want, got := imageTree(t, d, "cmp"), imageTree(t, &e.dockerEngine, "cmp")
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: in docker's image, not in tent's", p)
		} else if g != w {
			t.Errorf("%s: tent %s, docker %s", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in tent's image, not in docker's", p)
		}
	}
	// tent's image through a registry into docker, which runs it
	// unchanged: the same ID, files, user.
	reg := startRegistry(t)
	ref := reg.addr + "/built:1"
	e.must(t, "tag", "cmp", ref)
	e.must(t, "push", ref)
	d.must(t, "pull", ref)
	if id, want := imageID(t, e, ref), strings.TrimSpace(d.must(t, "image", "inspect", "-f", "{{.Id}}", ref)); id != want {
		t.Errorf("docker pulled image %s, tent built %s", want, id)
	}
	if out := d.must(t, "run", "--rm", ref, "sh", "-c", "id -u; cat /renamed.txt /flat/b.txt; pwd"); out != "1000\nA\nB\n/srv/app\n" {
		t.Errorf("docker ran tent's built image: %q", out)
	}
	pulled := imageTree(t, d, ref)
	for p, g := range got {
		if pulled[p] != g {
			t.Errorf("%s: %q after the registry, %q in tent's image", p, pulled[p], g)
		}
	}
}

// imageTree flattens a saved image's layers and describes every path.
func imageTree(t *testing.T, d *dockerEngine, ref string) map[string]string {
	dir := t.TempDir()
	save := d.command("save", ref)
	var buf bytes.Buffer
	save.Stdout = &buf
	if err := save.Run(); err != nil {
		t.Fatalf("save %s: %v", ref, err)
	}
	saved := filepath.Join(dir, "saved")
	if _, err := archive.Apply(saved, &buf, archive.Plain); err != nil {
		t.Fatal(err)
	}
	var manifest []struct{ Layers []string }
	b, err := os.ReadFile(filepath.Join(saved, "manifest.json"))
	if err != nil || json.Unmarshal(b, &manifest) != nil || len(manifest) != 1 {
		t.Fatalf("manifest.json of %s: %v", ref, err)
	}
	root := filepath.Join(dir, "root")
	for _, l := range manifest[0].Layers {
		f, err := os.Open(filepath.Join(saved, l))
		if err != nil {
			t.Fatal(err)
		}
		_, err = archive.Apply(root, f, archive.Delete)
		f.Close()
		if err != nil {
			t.Fatalf("layer %s: %v", l, err)
		}
	}
	return hostTree(t, root)
}

// TestBuildCompose: docker-compose (1.29) builds a service's image.
func TestBuildCompose(t *testing.T) {
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose not installed (apt-get install docker-compose)")
	}
	e := startTent(t)
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{
		"docker-compose.yml": "version: \"3.8\"\nservices:\n  app:\n    build: ./app\n    image: composed:1\n",
		"app/Dockerfile":     "FROM busybox\nRUN echo composed > /made\nCMD [\"cat\", \"/made\"]\n",
	})
	cmd := exec.Command("docker-compose", "--no-ansi", "build")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+e.host)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose build: %v\n%s", err, out)
	}
	if got := e.must(t, "run", "--rm", "composed:1"); got != "composed\n" {
		t.Errorf("the built service's image: %q", got)
	}
	noStepsLeft(t, e)
}

// TestBuildParallelStages: independent stages run at once, as BuildKit
// runs them. Each of two stages waits (up to 20 s) for the other to have
// started, through a shared cache mount: built one after the other, the
// first would give up and fail the build. The output is printed in the
// stages' order all the same, with docker's sequential step numbers; a
// failing stage ends the build with its own error.
func TestBuildParallelStages(t *testing.T) {
	e := startTent(t)
	ctx := t.TempDir()
	wait := func(me, other string) string {
		return fmt.Sprintf("RUN --mount=type=cache,target=/c,id=rendezvous-%%s touch /c/%s && i=0; "+
			"while [ ! -e /c/%s ]; do i=$((i+1)); [ $i -gt 200 ] && exit 1; sleep 0.1; done; echo %s-done > /%s", me, other, me, me)
	}
	nonce := fmt.Sprint(time.Now().UnixNano()) // a fresh rendezvous per run
	writeTree(t, ctx, map[string]string{
		"Dockerfile": fmt.Sprintf("FROM busybox AS a\n"+wait("a", "b")+"\nFROM busybox AS b\n"+wait("b", "a")+
			"\nFROM busybox\nCOPY --from=a /a /a\nCOPY --from=b /b /b\n", nonce, nonce),
		"Dockerfile.fail": "FROM busybox AS slow\nRUN sleep 30\nFROM busybox AS bad\nRUN exit 3\nFROM busybox\nCOPY --from=slow /etc/hostname /x\nCOPY --from=bad /etc/hostname /y\n",
	})
	out, errOut, code := capture(t, exec.Command(tentBin(), "-H", e.host, "build", "-t", "par", ctx), nil)
	if code != 0 {
		t.Fatalf("a build whose two stages meet: exit %d\n%s\n%s", code, out, errOut)
	}
	if got := e.must(t, "run", "--rm", "par", "cat", "/a", "/b"); got != "a-done\nb-done\n" {
		t.Errorf("files: %q", got)
	}
	var steps []string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Step ") {
			steps = append(steps, l[:strings.Index(l, " :")])
		}
	}
	if strings.Join(steps, ",") != "Step 1/7,Step 2/7,Step 3/7,Step 4/7,Step 5/7,Step 6/7,Step 7/7" ||
		strings.Index(out, "a-done") > strings.Index(out, "Step 3/7") {
		t.Errorf("the output is not in the stages' order:\n%s", out)
	}
	// The live display (forced: the output is not a terminal here) over a
	// rebuild: every step cached, the list left on the screen.
	out, errOut, code = capture(t, exec.Command(tentBin(), "-H", e.host, "build", "--progress", "tty", "-t", "par", ctx), nil)
	shown := regexp.MustCompile("\x1b\\[[0-9]*[AK]").ReplaceAllString(out, "")
	if code != 0 || !strings.Contains(out, "\x1b[K") || !strings.Contains(shown, "(7/7) FINISHED") ||
		!strings.Contains(shown, " => CACHED [2/7] RUN --mount=type=cache") || !strings.Contains(shown, "Successfully tagged par:latest") {
		t.Errorf("--progress tty: exit %d\n%s\n%s", code, shown, errOut)
	}
	if _, errOut, code := capture(t, exec.Command(tentBin(), "-H", e.host, "build", "--progress", "fancy", ctx), nil); code == 0 || !strings.Contains(errOut, "use auto, plain, tty or quiet") {
		t.Errorf("--progress fancy: exit %d %s", code, errOut)
	}
	// A failing stage: its error, at once (the other stage's 30 s sleep
	// is given up), and nothing tagged.
	start := time.Now()
	out, errOut, code = capture(t, exec.Command(tentBin(), "-H", e.host, "build", "-t", "parfail", "-f", filepath.Join(ctx, "Dockerfile.fail"), ctx), nil)
	if code == 0 || !strings.Contains(out+errOut, "returned a non-zero code: 3") {
		t.Errorf("a failing stage: exit %d\n%s\n%s", code, out, errOut)
	}
	if took := time.Since(start); took > 25*time.Second {
		t.Errorf("the failing build waited for its other stage (%s)", took)
	}
	if _, code := e.run("image", "inspect", "parfail"); code == 0 {
		t.Error("a failed build tagged its image")
	}
	if out := e.must(t, "ps", "-aq"); strings.TrimSpace(out) != "" {
		t.Errorf("a failed build left containers: %q", out)
	}
}

// TestBuildContextKnownAgain: what the engine remembers of a context it
// was sent before (each COPY's sources, by the context's digest: the
// context is then not unpacked while steps come from the cache) never
// stands in for the files: a step that must run all the same (the cache
// pruned) gets them, and a file changed in place (same size) is seen.
//
// tent's CLI names a context by its files' metadata once they are two
// seconds old (the test waits for that): a rebuild the daemon can make
// from the cache alone is made without the files, one it cannot gets
// them.
func TestBuildContextKnownAgain(t *testing.T) {
	e := startTent(t)
	ctx := t.TempDir()
	writeTree(t, ctx, map[string]string{"Dockerfile": "FROM busybox\nCOPY app/ /app/\nCOPY *.txt /notes/\nRUN cat /app/* /notes/* > /all\n",
		"app/a": "alpha\n", "app/b": "bravo\n", "one.txt": "one\n", "two.txt": "two\n", ".dockerignore": "two.txt\n"})
	settle := func() { time.Sleep(2100 * time.Millisecond) } // files older than the CLI's racy window
	settle()
	build := func() string {
		t.Helper()
		out, errOut, code := capture(t, exec.Command(tentBin(), "-H", e.host, "build", "-q", "-t", "known", ctx), nil)
		if code != 0 {
			t.Fatalf("build: exit %d\n%s\n%s", code, out, errOut)
		}
		return strings.TrimSpace(out)
	}
	first := build()
	if again := build(); again != first {
		t.Errorf("a rebuild of the same context: %s, want %s", again, first)
	}
	if _, errOut, code := capture(t, exec.Command(tentBin(), "-H", e.host, "builder", "prune", "-f"), nil); code != 0 {
		t.Fatalf("builder prune: %s", errOut)
	}
	build()
	if got := e.must(t, "run", "--rm", "known", "cat", "/all"); got != "alpha\nbravo\none\n" {
		t.Errorf("after the cache was pruned: %q", got)
	}
	if err := os.WriteFile(filepath.Join(ctx, "app", "a"), []byte("ALPHA\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build()
	if got := e.must(t, "run", "--rm", "known", "cat", "/all"); got != "ALPHA\nbravo\none\n" {
		t.Errorf("after a change in place: %q", got)
	}
	// The same, the change older than the racy window: the files' metadata
	// differs from what the daemon knows.
	if err := os.WriteFile(filepath.Join(ctx, "app", "b"), []byte("BRAVO\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	settle()
	changed := build()
	if got := e.must(t, "run", "--rm", "known", "cat", "/all"); got != "ALPHA\nBRAVO\none\n" {
		t.Errorf("after a change in place, two seconds later: %q", got)
	}
	if again := build(); again != changed {
		t.Errorf("a rebuild of the changed context: %s, want %s", again, changed)
	}
}

// TestBuildKnownContextProtocol: POST /build with X-Tent-Context-Stat and
// Expect: 100-continue (tent's CLI's request): a context the daemon does
// not know, or a build that needs its files, gets 100 Continue and is
// sent; a known one whose steps are all cached is answered at once,
// without 100 Continue, with the image the context made.
func TestBuildKnownContextProtocol(t *testing.T) {
	e := startTent(t)
	body := tarOf(t, map[string]string{"Dockerfile": "FROM busybox\nCOPY f /f\nRUN cat /f > /g\n", "f": "content\n"})
	sock := strings.TrimPrefix(e.host, "unix://")
	// post sends the request's head, then the body if asked for it, and
	// says whether it was, with the image ID the answer names.
	post := func(query, stat string) (asked bool, id string) {
		t.Helper()
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST /v1.41/build?t=known&q=1%s HTTP/1.1\r\nHost: tent\r\nContent-Type: application/x-tar\r\nContent-Length: %d\r\nExpect: 100-continue\r\nX-Tent-Context-Stat: %s\r\n\r\n", query, len(body), stat)
		conn.SetDeadline(time.Now().Add(time.Minute))
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusContinue {
			asked = true
			io.WriteString(conn, body)
			if resp, err = http.ReadResponse(br, nil); err != nil {
				t.Fatal(err)
			}
		}
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`"ID":"(sha256:[0-9a-f]{64})"`).FindSubmatch(b)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("%s %s: %s %s", query, stat, resp.Status, b)
		}
		return asked, string(m[1])
	}
	asked, first := post("", "stat-one")
	if !asked {
		t.Fatal("a context the daemon never saw was not asked for")
	}
	if asked, id := post("", "stat-one"); asked || id != first {
		t.Errorf("the known context again: asked for it %v, image %s (want %s without it)", asked, id, first)
	}
	if got := e.must(t, "run", "--rm", "known", "cat", "/g"); got != "content\n" {
		t.Errorf("the image built without its context: /g %q", got)
	}
	if asked, _ := post("", "stat-two"); !asked {
		t.Error("another stat: not asked for the context")
	}
	if asked, _ := post("&nocache=1", "stat-one"); !asked {
		t.Error("--no-cache: not asked for the context")
	}
	if _, errOut, code := capture(t, exec.Command(tentBin(), "-H", e.host, "builder", "prune", "-f"), nil); code != 0 {
		t.Fatalf("builder prune: %s", errOut)
	}
	if asked, id := post("", "stat-one"); !asked || id == "" {
		t.Errorf("the known context with its cache pruned: asked for it %v", asked)
	}
	if got := e.must(t, "run", "--rm", "known", "cat", "/g"); got != "content\n" {
		t.Errorf("rebuilt after the cache was pruned: /g %q", got)
	}
}
