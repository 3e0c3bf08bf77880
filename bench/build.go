package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/tent-project/tent/internal/snapshot"
)

// buildDockerfile is a multi-step build of the kind users write: a base,
// its metadata, the application's files, steps that run, more files.
const buildDockerfile = `FROM busybox:bench
ENV APP=/srv/app MODE=bench
LABEL bench=build
WORKDIR /srv/app
COPY deps/ ./deps/
RUN cat deps/* | wc -c > /srv/deps-size && mkdir -p /srv/cache && for i in $(seq 1 50); do echo $i > /srv/cache/$i; done
COPY src/ ./src/
RUN ls src | wc -l > /srv/src-count && cat src/* > /srv/bundle
EXPOSE 8080
USER 1000
CMD ["cat", "/srv/bundle"]
`

// buildContextDir writes the build's context: 20 dependency files of
// 64 KiB and 100 small source files.
func buildContextDir(dir string) error {
	files := map[string]string{"Dockerfile": buildDockerfile}
	for i := range 20 {
		files[fmt.Sprintf("deps/lib%02d.bin", i)] = strings.Repeat(fmt.Sprintf("dependency %02d ", i), 64<<10/14)
	}
	for i := range 100 {
		files[fmt.Sprintf("src/file%03d.txt", i)] = fmt.Sprintf("source file %d\n", i)
	}
	for name, body := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// buildFigures: a cold build (no cache), a rebuild with nothing changed
// (every step cached) and a rebuild after a one-file change of the
// sources (the last COPY and RUN run again), through the docker CLI's
// legacy builder protocol for both engines, RUN steps without a network.
func (s *suite) buildFigures() {
	os.Setenv("DOCKER_BUILDKIT", "0") // the same protocol for both engines
	ctx := filepath.Join(s.work, "build-context")
	if err := buildContextDir(ctx); err != nil {
		fail(err)
	}
	buildWith := func(e *engine, client string, noCache bool) float64 {
		args := []string{"build", "-q", "--network", "none", "-t", "bench-build"}
		if noCache {
			args = append(args, "--no-cache")
		}
		return ms(e.timedWith(client, append(args, ctx)...))
	}
	build := func(e *engine, noCache bool) float64 { return buildWith(e, "docker", noCache) }
	cold := &figure{name: "`build` of a 9-step Dockerfile, no cache", label: "build (cold)", unit: "ms", ref: "docker", goal: atMostRatio(0.5)}
	cold.tent, cold.other = interleave(s.heavyRuns*3, 1, func() float64 { return build(s.tent, true) }, func() float64 { return build(s.docker, true) })
	s.add(cold)
	cached := &figure{name: "`build` again, nothing changed (all cached)", label: "build (cached)", unit: "ms", ref: "docker", goal: atMostRatio(0.1)}
	cached.tent, cached.other = interleave(s.runs, 1, func() float64 { return build(s.tent, false) }, func() float64 { return build(s.docker, false) })
	s.add(cached)
	own := &figure{name: "`build` again, nothing changed, each engine's own CLI", label: "build (cached, own CLI)", unit: "ms", ref: "docker", goal: atMostRatio(0.1)}
	own.tent, own.other = interleave(s.runs, 1, func() float64 { return buildWith(s.tent, s.tent.cli, false) }, func() float64 { return buildWith(s.docker, s.docker.cli, false) })
	s.add(own)
	n := 0
	change := func(e *engine) float64 {
		n++
		if err := os.WriteFile(filepath.Join(ctx, "src", "file000.txt"), []byte(fmt.Sprintf("changed %d\n", n)), 0o644); err != nil {
			fail(err)
		}
		return build(e, false)
	}
	changed := &figure{name: "`build` after a one-file change (last COPY and RUN rerun)", label: "build (1 file changed)", unit: "ms", ref: "docker"}
	changed.tent, changed.other = interleave(s.heavyRuns*3, 1, func() float64 { return change(s.tent) }, func() float64 { return change(s.docker) })
	s.add(changed)
	for _, e := range s.engines() {
		e.try("rmi", "bench-build")
	}
	s.buildahFigures(ctx, func(noCache bool) float64 { return buildWith(s.tent, s.tent.cli, noCache) })
}

// buildahFigures: the same builds, cold and all cached, against buildah
// (Debian's, as root, with a storage of its own under the bench's work
// directory, RUN steps isolated by its OCI runtime without a network,
// --layers for its step cache) with tent's own CLI: builders without a
// docker CLI in front. Skipped where buildah is not installed.
func (s *suite) buildahFigures(ctx string, tentBuild func(noCache bool) float64) {
	bin, err := exec.LookPath("buildah")
	if err != nil {
		logf("build: buildah is not installed: its figures are skipped")
		return
	}
	root := filepath.Join(s.work, "buildah")
	defer func() {
		snapshot.UnmountBelow(root) // its storage's own mounts
		os.RemoveAll(root)
	}()
	buildah := func(args ...string) time.Duration {
		cmd := exec.Command(bin, append([]string{"--root", filepath.Join(root, "storage"), "--runroot", filepath.Join(root, "run"),
			"--storage-driver", "overlay"}, args...)...)
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			fail(fmt.Errorf("buildah %v: %v: %s", args, err, out))
		}
		return time.Since(t0)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		fail(err)
	}
	archive := filepath.Join(root, "busybox.tar")
	s.tent.docker("save", "-o", archive, "busybox:bench")
	buildah("pull", "-q", "docker-archive:"+archive)
	build := func(noCache bool) float64 {
		args := []string{"bud", "-q", "--layers", "--network", "none", "-t", "bench-build"}
		if noCache {
			args = append(args, "--no-cache")
		}
		return ms(buildah(append(args, ctx)...))
	}
	cold := &figure{name: "`build` of a 9-step Dockerfile, no cache, tent's CLI against buildah", label: "build (cold) vs buildah", unit: "ms", ref: "buildah"}
	cold.tent, cold.other = interleave(s.heavyRuns*3, 1, func() float64 { return tentBuild(true) }, func() float64 { return build(true) })
	s.add(cold)
	cached := &figure{name: "`build` again, nothing changed, tent's CLI against buildah (--layers)", label: "build (cached) vs buildah", unit: "ms", ref: "buildah"}
	cached.tent, cached.other = interleave(s.runs, 1, func() float64 { return tentBuild(false) }, func() float64 { return build(false) })
	s.add(cached)
	s.tent.try("rmi", "bench-build")
}
