// Package builder turns a Dockerfile and its context into an image, in
// the engine's process: Dockerfiles are parsed by BuildKit's parser and
// instructions packages (parsing only), RUN steps run as containers of
// the engine (Backend), COPY and ADD write into a snapshot mounted by the
// builder itself, and every step's result is a cache image found again
// by a key of its parent, its instruction and its inputs (cache.go).
// See docs/builder.md.
package builder

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/moby/api/types/container"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/snapshot"
	bolt "go.etcd.io/bbolt"
)

// Backend is what a build needs of the engine beyond images and layers.
type Backend interface {
	// PullImage fetches an image that is not here (FROM, COPY --from),
	// its progress as text on out.
	PullImage(ctx context.Context, ref, platform string, auth registry.Auth, out io.Writer) error
	// RunStep runs a RUN step: a container of r.Image with r.Config and
	// r.Host, its output on r.Output, until it ends. The container stays
	// (ended) for its layer to be taken, until RemoveStep.
	RunStep(ctx context.Context, r RunRequest) (Ran, error)
	// RemoveStep removes a step's container (its writable layer too,
	// unless the layer was committed).
	RemoveStep(id string)
}

// RunRequest is one RUN step's container.
type RunRequest struct {
	Image  digest.Digest
	Config *container.Config
	Host   *container.HostConfig
	Output io.Writer
	// Created is told the container's ID before it starts.
	Created func(id string)
}

// Ran is a RUN step's ended container.
type Ran struct {
	ID       string
	Layer    string // the snapshot key of its writable layer
	ExitCode int
}

// Options are a build's settings, as POST /build takes them.
type Options struct {
	Tags       []string
	Dockerfile string
	BuildArgs  map[string]*string
	Target     string
	NoCache    bool
	Pull       bool
	Quiet      bool
	Labels     map[string]string
	// NetworkMode is the RUN steps' network ("" or "default": the
	// engine's default bridge).
	NetworkMode string
	ExtraHosts  []string
	// Platform must be the host's (no emulation yet); "" is the host's.
	Platform string
	// Resources and ShmSize limit the RUN steps' containers.
	Resources container.Resources
	ShmSize   int64
	// Secrets are RUN --mount=type=secret's files by id (tent build
	// --secret); never written to a layer.
	Secrets map[string][]byte
	// Auth are credentials for pulls of base images, by registry
	// (X-Registry-Config).
	Auth map[string]registry.Auth
	// ContextLimit is the largest context taken (0: DefaultContextLimit).
	ContextLimit int64
	// ContextStat stands for the context's files by their metadata (a
	// digest tent's CLI makes of their names, sizes, times and inodes):
	// a build with the context remembers it, and BuildKnown takes it
	// instead of the context.
	ContextStat string
}

// Output is where a build reports: text as docker's legacy builder
// prints it, and the result's ID (the stream's aux message).
type Output struct {
	Stream func(text string)
	Aux    func(v any)
}

// Builder builds images.
type Builder struct {
	images *images.Store
	snap   snapshot.Snapshotter
	db     *bolt.DB
	be     Backend
	root   string
	// cacheMu guards cacheLocks, one per RUN --mount=type=cache id.
	cacheMu    sync.Mutex
	cacheLocks map[string]*sync.Mutex
	// plans are what COPY steps found in recent contexts, known the
	// contexts clients know by their files' metadata (plans.go).
	plans plans
	known knownContexts
}

// New returns a builder keeping its files under root (contexts being
// built, mount points, RUN --mount=type=cache directories) and its cache
// index in db.
func New(db *bolt.DB, imgs *images.Store, snap snapshot.Snapshotter, be Backend, root string) (*Builder, error) {
	for _, d := range []string{root, filepath.Join(root, "tmp"), filepath.Join(root, "cache-mounts")} { // see cacheMountsDir
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	// Whatever an interrupted build left (a context, a mount point).
	entries, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range entries {
		removeAll(filepath.Join(root, "tmp", e.Name()))
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(cacheBucket)
		return err
	}); err != nil {
		return nil, err
	}
	return &Builder{images: imgs, snap: snap, db: db, be: be, root: root, cacheLocks: map[string]*sync.Mutex{}}, nil
}

// Build builds the image of the Dockerfile in the context body and tags
// it; the result's ID is returned and sent on out.Aux. On error no image
// is tagged, and nothing is left running or mounted.
func (b *Builder) Build(ctx context.Context, o Options, body io.Reader, out Output) (digest.Digest, error) {
	var bc *buildContext
	id, err := b.build(ctx, o, out, false, func(work *workDir) (*buildContext, error) {
		var err error
		bc, err = readContext(body, work, o.Dockerfile, o.ContextLimit)
		return bc, err
	})
	if err == nil && o.ContextStat != "" && bc.digest != "" {
		b.known.put(knownKey(&o), knownContext{digest: bc.digest, dockerfile: bc.dockerfile, dockerfileName: bc.dockerfileName})
	}
	return id, err
}

// BuildKnown builds from a context the client knows by its files'
// metadata (Options.ContextStat), without the context itself, if a
// build before sent the context that metadata stood for and every step
// of this one comes from the cache. Otherwise it tells the caller (ok
// false) to build with the context: nothing was tagged or written out
// then, and out had only this attempt's lines. Known contexts:
// docs/builder.md.
func (b *Builder) BuildKnown(ctx context.Context, o Options, out Output) (id digest.Digest, ok bool) {
	if o.ContextStat == "" || o.NoCache || o.Pull {
		return "", false
	}
	kc, ok := b.known.get(knownKey(&o))
	if !ok {
		return "", false
	}
	id, err := b.build(ctx, o, out, true, func(work *workDir) (*buildContext, error) {
		return &buildContext{work: work, digest: kc.digest, dockerfile: kc.dockerfile, dockerfileName: kc.dockerfileName, absent: true}, nil
	})
	return id, err == nil
}

// build builds with the context open returns; cacheOnly: a step that is
// not in the cache ends it (errNotCached).
func (b *Builder) build(ctx context.Context, o Options, out Output, cacheOnly bool, open func(*workDir) (*buildContext, error)) (digest.Digest, error) {
	if out.Stream == nil {
		out.Stream = func(string) {}
	}
	var quietLog bytes.Buffer
	if o.Quiet {
		// A quiet build says only its result, unless it fails: then what
		// it printed comes with the error, as docker's does.
		real := out.Stream
		out.Stream = func(s string) { quietLog.WriteString(s) }
		defer func() {
			if quietLog.Len() > 0 && ctx.Err() == nil {
				real(quietLog.String())
			}
		}()
	}
	if err := checkPlatform(o.Platform); err != nil {
		return "", err
	}
	for _, t := range o.Tags {
		if _, err := images.Normalize(t); err != nil {
			return "", fmt.Errorf("invalid tag %q: %w", t, errdefs.ErrInvalidArgument)
		}
	}
	work := &workDir{parent: filepath.Join(b.root, "tmp")}
	defer work.remove()
	bc, err := open(work)
	if err != nil {
		return "", err
	}
	defer bc.close()
	parsed, err := parser.Parse(bytes.NewReader(bc.dockerfile))
	if err != nil {
		return "", fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	stages, metaArgs, err := instructions.Parse(parsed.AST, nil)
	if err != nil {
		return "", fmt.Errorf("%w: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(stages) == 0 {
		return "", fmt.Errorf("the Dockerfile has no FROM: %w", errdefs.ErrInvalidArgument)
	}
	bd := &build{b: b, o: &o, ctx: ctx, out: out, bc: bc, work: work, stages: stages, cacheOnly: cacheOnly,
		results: make([]*state, len(stages)), escape: parsed.EscapeToken, usedArgs: map[string]bool{}}
	if err := bd.globalArgs(metaArgs); err != nil {
		return "", err
	}
	target := len(stages) - 1
	if o.Target != "" {
		i, ok := instructions.HasStage(stages, strings.ToLower(o.Target))
		if !ok {
			return "", fmt.Errorf("failed to reach build target %s in Dockerfile: %w", o.Target, errdefs.ErrInvalidArgument)
		}
		target = i
	}
	needed, err := bd.plan(target)
	if err != nil {
		return "", err
	}
	if err := bd.runStages(needed); err != nil {
		if !o.Quiet || ctx.Err() != nil {
			quietLog.Reset()
		}
		return "", err
	}
	final := bd.results[target]
	conf := final.conf
	if len(o.Labels) > 0 {
		if conf.Config.Labels == nil {
			conf.Config.Labels = map[string]string{}
		}
		for k, v := range o.Labels {
			conf.Config.Labels[k] = v
		}
	}
	img, err := b.images.Create(&conf, false)
	if err != nil {
		return "", err
	}
	bd.warnUnusedArgs()
	for _, t := range o.Tags {
		if err := b.images.Tag(img.ID, t); err != nil {
			return "", err
		}
	}
	quietLog.Reset()
	if out.Aux != nil {
		out.Aux(map[string]string{"ID": img.ID.String()})
	}
	if o.Quiet {
		return img.ID, nil
	}
	out.Stream(fmt.Sprintf("Successfully built %s\n", short(img.ID)))
	for _, t := range o.Tags {
		out.Stream(fmt.Sprintf("Successfully tagged %s\n", familiarTag(t)))
	}
	return img.ID, nil
}

// familiarTag is a tag as docker prints it ("app" -> "app:latest").
func familiarTag(t string) string {
	full, err := images.Normalize(t)
	if err != nil {
		return t
	}
	return images.FamiliarName(full)
}

func short(id digest.Digest) string {
	if id == "" {
		return ""
	}
	return id.Encoded()[:12]
}

func randomID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// removeAll unmounts what may still be mounted below dir (an interrupted
// step's root) and removes it.
func removeAll(dir string) {
	snapshot.UnmountBelow(dir)
	os.RemoveAll(dir)
}

// StepError is a RUN step that failed: its command and exit code.
type StepError struct {
	Cmd  []string
	Code int
}

func (e *StepError) Error() string {
	return fmt.Sprintf("The command '%s' returned a non-zero code: %d", strings.Join(e.Cmd, " "), e.Code)
}

// ExitCode returns the code of a failed RUN step in err's chain (0 if
// none).
func ExitCode(err error) int {
	var se *StepError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}

var now = func() time.Time { return time.Now().UTC() }
