package builder

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/registry"
)

// state is where a stage stands: an image (stored, a cache image until
// the build's end) and its config.
type state struct {
	id   digest.Digest
	conf dockerspec.DockerOCIImage
}

// build is one Build call's work.
type build struct {
	b       *Builder
	o       *Options
	ctx     context.Context
	out     Output
	bc      *buildContext
	work    *workDir
	stages  []instructions.Stage
	results []*state
	escape  rune
	// global are the ARGs before the first FROM (with the build's values)
	// and the automatic platform ARGs.
	global []string
	// argsMu guards usedArgs (stages run at once).
	argsMu   sync.Mutex
	usedArgs map[string]bool
	total    int
	// deps are the stages each stage reads (its base, COPY --from, RUN
	// --mount from=), firstStep the number of its FROM step in the
	// sequential order docker prints.
	deps      [][]int
	firstStep []int
	// cacheOnly: the context is not here (BuildKnown), and a step that
	// is not in the cache ends the build with errNotCached.
	cacheOnly bool
}

// predefinedArgs may be given with --build-arg without being declared;
// their values reach RUN but never the image or its history.
var predefinedArgs = []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
	"FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"}

// platformArgs are BuildKit's automatic ARGs: the global scope has them;
// a stage has those it declares.
func platformArgs() []string {
	p := "linux/" + runtime.GOARCH
	var out []string
	for _, pre := range []string{"BUILD", "TARGET"} {
		out = append(out, pre+"PLATFORM="+p, pre+"OS=linux", pre+"ARCH="+runtime.GOARCH, pre+"VARIANT=")
	}
	return out
}

// checkPlatform refuses a platform other than the host's: images of
// other architectures need emulation, which tent does not do yet.
func checkPlatform(p string) error {
	if p == "" {
		return nil
	}
	want, err := registry.ParsePlatform(p)
	if err != nil {
		return fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if want.OS != "linux" || (want.Architecture != "" && want.Architecture != runtime.GOARCH) {
		return fmt.Errorf("building for platform %s needs emulation, which tent does not have yet (this host is linux/%s): %w", p, runtime.GOARCH, errdefs.ErrNotImplemented)
	}
	return nil
}

func (bd *build) lex() *shell.Lex { return shell.NewLex(bd.escape) }

// globalArgs evaluates the ARGs before the first FROM.
func (bd *build) globalArgs(metaArgs []instructions.ArgCommand) error {
	bd.global = platformArgs()
	for _, a := range metaArgs {
		for _, kv := range a.Args {
			v, ok, err := bd.argValue(kv, bd.global)
			if err != nil {
				return err
			}
			if ok {
				bd.global = setEnv(bd.global, kv.Key, v)
			}
		}
	}
	return nil
}

// argValue is an ARG's value: the build's, else its default expanded in
// env; ok is false for an ARG without either.
func (bd *build) argValue(kv instructions.KeyValuePairOptional, env []string) (string, bool, error) {
	if v, given := bd.o.BuildArgs[kv.Key]; given && v != nil {
		bd.argsMu.Lock()
		bd.usedArgs[kv.Key] = true
		bd.argsMu.Unlock()
		return *v, true, nil
	}
	if kv.Value == nil {
		return "", false, nil
	}
	v, _, err := bd.lex().ProcessWord(*kv.Value, shell.EnvsFromSlice(env))
	if err != nil {
		return "", false, fmt.Errorf("ARG %s: %w: %w", kv.Key, err, errdefs.ErrInvalidArgument)
	}
	return v, true, nil
}

// warnUnusedArgs says which --build-arg values no ARG took, as docker.
func (bd *build) warnUnusedArgs() {
	var unused []string
	for k := range bd.o.BuildArgs {
		if !bd.usedArgs[k] && !slices.Contains(predefinedArgs, k) {
			unused = append(unused, k)
		}
	}
	if len(unused) > 0 && !bd.o.Quiet {
		sort.Strings(unused)
		bd.out.Stream(fmt.Sprintf("[Warning] One or more build-args %v were not consumed\n", unused))
	}
}

// baseName is a stage's FROM argument with the global ARGs expanded.
func (bd *build) baseName(s *instructions.Stage) (string, error) {
	name, _, err := bd.lex().ProcessWord(s.BaseName, shell.EnvsFromSlice(bd.global))
	if err != nil {
		return "", fmt.Errorf("FROM %s: %w: %w", s.BaseName, err, errdefs.ErrInvalidArgument)
	}
	if name == "" {
		return "", fmt.Errorf("FROM %s: the base name is empty: %w", s.BaseName, errdefs.ErrInvalidArgument)
	}
	return name, nil
}

// stageRef finds a stage that name (or index) refers to from stage at:
// only earlier stages count.
func (bd *build) stageRef(name string, at int) (int, bool) {
	if i, ok := instructions.HasStage(bd.stages[:at], name); ok {
		return i, true
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 && n < at {
		return n, true
	}
	return -1, false
}

// plan marks the stages the target needs (BuildKit skips the others) and
// counts their steps.
func (bd *build) plan(target int) ([]bool, error) {
	needed := make([]bool, len(bd.stages))
	bd.deps = make([][]int, len(bd.stages))
	var visit func(i int) error
	visit = func(i int) error {
		if needed[i] {
			return nil
		}
		needed[i] = true
		s := &bd.stages[i]
		base, err := bd.baseName(s)
		if err != nil {
			return err
		}
		if j, ok := bd.stageRef(base, i); ok {
			bd.deps[i] = append(bd.deps[i], j)
			if err := visit(j); err != nil {
				return err
			}
		}
		for _, c := range s.Commands {
			for _, from := range commandSources(c) {
				if j, ok := bd.stageRef(from, i); ok {
					bd.deps[i] = append(bd.deps[i], j)
					if err := visit(j); err != nil {
						return err
					}
				} else if _, err := strconv.Atoi(from); err == nil {
					return fmt.Errorf("invalid from flag value %s: refers to a stage at or after this one: %w", from, errdefs.ErrInvalidArgument)
				}
			}
		}
		return nil
	}
	if err := visit(target); err != nil {
		return nil, err
	}
	bd.firstStep = make([]int, len(bd.stages))
	for i, s := range bd.stages {
		if needed[i] {
			bd.firstStep[i] = bd.total + 1
			bd.total += 1 + len(s.Commands)
		}
	}
	return needed, nil
}

// commandSources are the stages or images a command reads from (COPY
// --from, RUN --mount from=).
func commandSources(c instructions.Command) []string {
	switch c := c.(type) {
	case *instructions.CopyCommand:
		if c.From != "" {
			return []string{c.From}
		}
	case *instructions.RunCommand:
		var out []string
		for _, m := range instructions.GetMounts(c) {
			if m.From != "" {
				out = append(out, m.From)
			}
		}
		return out
	}
	return nil
}

// stageRun is one stage's work: its state and its ARGs, its output and
// the context it runs in (the build's, given up when another stage
// fails).
type stageRun struct {
	*build
	index  int
	cur    state
	args   []string // declared ARGs with values, NAME=value
	cmdSet bool
	ctx    context.Context
	out    Output
	step   int // the number of its next step
}

func (sr *stageRun) printStep(text string) {
	sr.out.Stream(fmt.Sprintf("Step %d/%d : %s\n", sr.step, sr.total, text))
	sr.step++
}

// runStages runs the needed stages, each as soon as the stages it reads
// are done: independent stages at once (BuildKit's way). Their output is
// printed in the stages' order all the same (output.go), with docker's
// step numbers. The first failure ends the others.
func (bd *build) runStages(needed []bool) error {
	ctx, cancel := context.WithCancel(bd.ctx)
	defer cancel()
	var order []int
	for i, n := range needed {
		if n {
			order = append(order, i)
		}
	}
	seq := newSequencer(bd.out.Stream, order)
	defer seq.flushAll()
	var (
		failOnce sync.Once
		failure  error
		wg       sync.WaitGroup
	)
	done := make([]chan struct{}, len(bd.stages))
	for _, i := range order {
		done[i] = make(chan struct{})
	}
	for _, i := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(done[i])
			defer seq.finish(i)
			for _, j := range bd.deps[i] {
				select {
				case <-done[j]:
				case <-ctx.Done():
				}
				if ctx.Err() != nil || bd.results[j] == nil {
					return // another stage failed: it says why
				}
			}
			sr := &stageRun{build: bd, index: i, ctx: ctx, out: Output{Stream: seq.writer(i), Aux: bd.out.Aux}, step: bd.firstStep[i]}
			if err := sr.runAll(); err != nil {
				failOnce.Do(func() { failure = err; cancel() })
			}
		}()
	}
	wg.Wait()
	return failure
}

// runAll runs the stage: its FROM, its base image's ONBUILD triggers, its
// instructions.
func (sr *stageRun) runAll() error {
	s := &sr.stages[sr.index]
	sr.printStep(s.SourceCode)
	base, err := sr.baseName(s)
	if err != nil {
		return err
	}
	if s.Platform != "" {
		p, _, err := sr.lex().ProcessWord(s.Platform, shell.EnvsFromSlice(sr.global))
		if err != nil {
			return err
		}
		if err := checkPlatform(p); err != nil {
			return err
		}
	}
	if j, ok := sr.stageRef(base, sr.index); ok {
		sr.cur = sr.results[j].clone() // other stages may start from it too
	} else if err := sr.from(base); err != nil {
		return err
	}
	sr.out.Stream(fmt.Sprintf(" ---> %s\n", short(sr.cur.id)))
	if err := sr.onBuild(); err != nil {
		return err
	}
	for _, c := range s.Commands {
		if err := sr.ctx.Err(); err != nil {
			return err
		}
		sr.printStep(sourceText(c))
		if err := sr.dispatch(c); err != nil {
			return err
		}
		sr.out.Stream(fmt.Sprintf(" ---> %s\n", short(sr.cur.id)))
	}
	sr.results[sr.index] = &sr.cur
	return nil
}

// clone is a deep copy of st (its config's maps and slices are its own).
func (st *state) clone() state {
	out := state{id: st.id}
	b, err := json.Marshal(st.conf)
	if err == nil {
		err = json.Unmarshal(b, &out.conf)
	}
	if err != nil {
		panic(fmt.Sprintf("copy of an image config: %v", err)) // it was made from JSON
	}
	return out
}

// from starts the stage on an image (pulled when missing, or always with
// --pull) or on scratch.
func (sr *stageRun) from(ref string) error {
	if strings.EqualFold(ref, "scratch") {
		created := now()
		sr.cur.conf = dockerspec.DockerOCIImage{Image: ocispec.Image{Created: &created,
			Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
			RootFS:   ocispec.RootFS{Type: "layers"}}}
		sr.cur.conf.Config.Env = []string{"PATH=" + defaultPath}
		return sr.commit("", "", true)
	}
	id, conf, err := sr.image(ref)
	if err != nil {
		return err
	}
	sr.cur = state{id: id, conf: *conf}
	return nil
}

// defaultPath is the PATH of an image that sets none (BuildKit's).
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// image finds an image by reference, pulling it when it is not here (or
// always, with --pull).
func (sr *stageRun) image(ref string) (digest.Digest, *dockerspec.DockerOCIImage, error) {
	bd := sr.build
	if _, err := bd.b.images.Get(ref); err != nil || bd.o.Pull {
		if err != nil && !errdefs.IsNotFound(err) {
			return "", nil, err
		}
		if bd.cacheOnly {
			return "", nil, errNotCached
		}
		if perr := bd.b.be.PullImage(sr.ctx, ref, bd.o.Platform, registry.AuthFor(bd.o.Auth, ref), streamWriter(sr.out.Stream)); perr != nil {
			if err == nil {
				return "", nil, perr
			}
			return "", nil, fmt.Errorf("base image %s is not here and could not be pulled: %w", ref, perr)
		}
	}
	img, err := bd.b.images.Get(ref)
	if err != nil {
		return "", nil, err
	}
	conf, err := bd.b.images.DockerConfig(img.ID)
	if err != nil {
		return "", nil, err
	}
	return img.ID, conf, nil
}

// streamWriter turns writes into Stream calls.
type streamWriter func(string)

func (w streamWriter) Write(p []byte) (int, error) {
	w(string(p))
	return len(p), nil
}

var _ io.Writer = streamWriter(nil)

// onBuild runs the base image's ONBUILD triggers, which the new image
// does not inherit.
func (sr *stageRun) onBuild() error {
	triggers := sr.cur.conf.Config.OnBuild
	if len(triggers) == 0 {
		return nil
	}
	sr.cur.conf.Config.OnBuild = nil
	word := "triggers"
	if len(triggers) == 1 {
		word = "trigger"
	}
	sr.out.Stream(fmt.Sprintf("# Executing %d build %s\n", len(triggers), word))
	for _, t := range triggers {
		res, err := parser.Parse(strings.NewReader(t))
		if err != nil {
			return fmt.Errorf("ONBUILD trigger %q: %w: %w", t, err, errdefs.ErrInvalidArgument)
		}
		for _, n := range res.AST.Children {
			c, err := instructions.ParseCommand(n)
			if err != nil {
				return fmt.Errorf("ONBUILD trigger %q: %w: %w", t, err, errdefs.ErrInvalidArgument)
			}
			if err := sr.dispatch(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// expansionEnv is what $VARs expand to in an instruction: the stage's
// ARGs under its ENV (ENV wins, as docker).
func (sr *stageRun) expansionEnv() shell.EnvGetter {
	env := append(append([]string(nil), sr.args...), sr.cur.conf.Config.Env...)
	return shell.EnvsFromSlice(env)
}

// runEnv is a RUN step's environment: the image's, with the stage's ARGs
// and the predefined proxy ARGs given to the build.
func (sr *stageRun) runEnv() []string {
	env := append([]string(nil), sr.cur.conf.Config.Env...)
	for _, a := range sr.args {
		k, _, _ := strings.Cut(a, "=")
		if !hasEnv(env, k) {
			env = append(env, a)
		}
	}
	for _, k := range predefinedArgs {
		if v, ok := sr.o.BuildArgs[k]; ok && v != nil && !hasEnv(env, k) {
			env = append(env, k+"="+*v)
		}
	}
	return env
}

func hasEnv(env []string, k string) bool {
	for _, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			return true
		}
	}
	return false
}

// setEnv sets k=v in env, in place of an earlier k.
func setEnv(env []string, k, v string) []string {
	for i, e := range env {
		if ek, _, _ := strings.Cut(e, "="); ek == k {
			out := append([]string(nil), env...)
			out[i] = k + "=" + v
			return out
		}
	}
	return append(append([]string(nil), env...), k+"="+v)
}

// shellArgs is a shell-form command line with the stage's shell.
func (sr *stageRun) shellArgs(c instructions.ShellDependantCmdLine) []string {
	if !c.PrependShell {
		return append([]string(nil), c.CmdLine...)
	}
	sh := sr.cur.conf.Config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
	}
	return append(append([]string(nil), sh...), strings.Join(c.CmdLine, " "))
}
