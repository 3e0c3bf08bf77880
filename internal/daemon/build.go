package daemon

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/builder"
	"github.com/tent-project/tent/internal/distribution"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/streams"
)

// Build builds an image from a context (POST /build, internal/builder).
func (d *Daemon) Build(ctx context.Context, o builder.Options, body io.Reader, out builder.Output) (digest.Digest, error) {
	if o.ContextLimit == 0 {
		o.ContextLimit = d.cfg.BuildContextLimit
	}
	id, err := d.builder.Build(ctx, o, body, out)
	if err == nil {
		d.tagEvents(id, o.Tags)
	}
	return id, err
}

// BuildKnown builds from a context known by its files' metadata, if it
// can do without the context (builder.BuildKnown).
func (d *Daemon) BuildKnown(ctx context.Context, o builder.Options, out builder.Output) (digest.Digest, bool) {
	id, ok := d.builder.BuildKnown(ctx, o, out)
	if ok {
		d.tagEvents(id, o.Tags)
	}
	return id, ok
}

func (d *Daemon) tagEvents(id digest.Digest, tags []string) {
	for _, t := range tags {
		d.Event(events.ActionTag, id.String(), t)
	}
}

// BuildPrune empties the build cache (POST /build/prune).
func (d *Daemon) BuildPrune() (*build.CachePruneReport, error) {
	d.Service.Mu.Lock()
	defer d.Service.Mu.Unlock()
	users := containerImages{d}.ImageUsers()
	res, err := d.builder.Prune(func(id digest.Digest) bool { return users[id.String()] > 0 }, d.Size)
	if err != nil {
		return nil, err
	}
	return &build.CachePruneReport{CachesDeleted: res.Deleted, SpaceReclaimed: res.Reclaimed}, nil
}

// buildSteps is the daemon as the builder's Backend: RUN steps are
// containers of the engine's (spec, mounts, networks, limits as for any
// container), removed when their layer is taken.
type buildSteps struct{ d *Daemon }

func (b buildSteps) PullImage(ctx context.Context, ref, platform string, auth registry.Auth, out io.Writer) error {
	fmt.Fprintf(out, "Pulling %s\n", ref)
	return b.d.ImagePull(ctx, ref, platform, auth, distribution.NewProgress(io.Discard, nil))
}

func (b buildSteps) RunStep(ctx context.Context, r builder.RunRequest) (builder.Ran, error) {
	d := b.d
	resp, err := d.Create(backend.CreateOpts{}, r.Config, r.Host, nil)
	if err != nil {
		return builder.Ran{}, err
	}
	ran := builder.Ran{ID: resp.ID, Layer: d.snapshotKey(resp.ID)}
	if r.Created != nil {
		r.Created(resp.ID)
	}
	a, err := d.Attach(resp.ID, false, true, true, nil)
	if err != nil {
		b.RemoveStep(resp.ID)
		return builder.Ran{}, err
	}
	pr, pw := io.Pipe()
	var relayed sync.WaitGroup
	relayed.Add(2)
	go func() {
		defer relayed.Done()
		a.Stream(ctx, nil, pw, func() { pw.Close() })
	}()
	go func() {
		defer relayed.Done()
		streams.Demux(r.Output, r.Output, pr)
		io.Copy(io.Discard, pr)
	}()
	if err := d.Start(resp.ID, ""); err != nil {
		a.Cancel()
		pw.Close()
		relayed.Wait()
		b.RemoveStep(resp.ID)
		return builder.Ran{}, err
	}
	w, err := d.Wait(ctx, resp.ID, container.WaitConditionNotRunning, func() {})
	if err != nil { // the build was given up: its step goes
		b.RemoveStep(resp.ID)
		pw.Close()
		relayed.Wait()
		return builder.Ran{}, err
	}
	relayed.Wait()
	ran.ExitCode = int(w.StatusCode)
	return ran, nil
}

func (b buildSteps) RemoveStep(id string) {
	if err := b.d.Remove(id, true, true); err != nil {
		b.d.log.Warn("remove a build step's container", "container", id, "err", err)
	}
}
