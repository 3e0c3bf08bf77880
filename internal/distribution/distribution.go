// Package distribution runs pulls, pushes and logins for the engine:
// the registry protocol (internal/registry) on one side, the image store
// (internal/images) on the other, with docker's progress stream
// (Progress) between: layers fetched and unpacked several at a time,
// cross-repository mounts on push, the messages the docker CLI shows.
package distribution

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
)

// Downloads and uploads that run at once per pull or push (docker's
// default is 3 and 5).
const (
	pullJobs = 3
	pushJobs = 5
	// fetchAttempts is how often a layer download is tried.
	fetchAttempts = 3
)

// Service pulls into and pushes from one image store.
type Service struct {
	images  *images.Store
	reg     *registry.Client
	publish func(action events.Action, id, name string)
}

// New returns the service of store, reaching registries with reg;
// publish is told of each image pulled or pushed (the engine's events).
func New(store *images.Store, reg *registry.Client, publish func(action events.Action, id, name string)) *Service {
	return &Service{images: store, reg: reg, publish: publish}
}

func shortID(d digest.Digest) string {
	e := d.Encoded()
	if len(e) > 12 {
		e = e[:12]
	}
	return e
}

// Pull fetches ref ("busybox", "host:5000/app:1", "app@sha256:...")
// from its registry. Errors before any layer is fetched are returned
// without writing to out; later ones end the stream.
func (s *Service) Pull(ctx context.Context, ref, platform string, auth registry.Auth, out *Progress) error {
	full, err := images.Normalize(ref)
	if err != nil {
		return err
	}
	named, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return err
	}
	plat, err := registry.ParsePlatform(platform)
	if err != nil {
		return err
	}
	r, err := s.reg.ParseReference(full)
	if err != nil {
		return err
	}
	img, err := s.reg.Resolve(ctx, r, auth, plat)
	if err != nil {
		return err
	}
	tagOrDigest := img.Digest.String()
	name := ""
	if t, ok := named.(reference.Tagged); ok {
		tagOrDigest, name = t.Tag(), full
	}
	out.Status(tagOrDigest, "Pulling from "+reference.Path(named))
	diffIDs := make([]digest.Digest, len(img.Layers))
	blobs := make([]digest.Digest, len(img.Layers))
	for i, l := range img.Layers {
		diffIDs[i], blobs[i] = l.DiffID, l.Digest
	}
	fetched, err := s.fetchLayers(ctx, img, diffIDs, out)
	if err != nil {
		s.images.Abandon(fetched, diffIDs)
		out.Fail(err)
		return nil
	}
	stored, changed, err := s.images.AddPulled(images.Pulled{Name: name, Repo: named.Name(),
		Manifest: img.Raw, Config: img.Config, Layers: blobs})
	if err != nil {
		s.images.Abandon(fetched, diffIDs)
		out.Fail(err)
		return nil
	}
	out.Status("", "Digest: "+img.Digest.String())
	shown := images.FamiliarName(full)
	if changed || name == "" {
		out.Status("", "Status: Downloaded newer image for "+shown)
	} else {
		out.Status("", "Status: Image is up to date for "+shown)
	}
	s.publish(events.ActionPull, stored.ID.String(), full)
	return nil
}

// fetchLayers downloads the layers the store lacks (several at once) and
// unpacks each as soon as it and those below it are in. It returns the
// blobs it stored, for clean-up if the pull fails.
func (s *Service) fetchLayers(ctx context.Context, img *registry.Image, diffIDs []digest.Digest, out *Progress) ([]digest.Digest, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n := len(img.Layers)
	done := make([]chan error, n)
	have := make([]bool, n)
	for i, l := range img.Layers {
		done[i] = make(chan error, 1)
		have[i] = s.images.HasLayer(l.Digest, diffIDs, i)
		if have[i] {
			out.Status(shortID(l.Digest), "Already exists")
			done[i] <- nil
		} else {
			out.Status(shortID(l.Digest), "Pulling fs layer")
		}
	}
	sem := make(chan struct{}, pullJobs)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, l := range img.Layers {
		if have[i] {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				done[i] <- ctx.Err()
				return
			}
			defer func() { <-sem }()
			done[i] <- s.fetchLayer(ctx, img, l, out)
		}()
	}
	var fetched []digest.Digest
	// fail stops the other downloads and waits for them, keeping what
	// they stored so that the caller can give it back.
	fail := func(i int, err error) ([]digest.Digest, error) {
		cancel()
		for j := i + 1; j < n; j++ {
			if e := <-done[j]; e == nil && !have[j] {
				fetched = append(fetched, img.Layers[j].Digest)
			}
		}
		return fetched, err
	}
	for i, l := range img.Layers {
		if err := <-done[i]; err != nil {
			return fail(i, err)
		}
		if have[i] {
			continue
		}
		fetched = append(fetched, l.Digest)
		id := shortID(l.Digest)
		out.Status(id, "Extracting")
		if err := s.images.UnpackLayer(l.Digest, diffIDs, i); err != nil {
			return fail(i, fmt.Errorf("failed to register layer: %w", err))
		}
		out.Status(id, "Pull complete")
	}
	return fetched, nil
}

// fetchLayer downloads one layer into the store, verified, retrying
// failed transfers.
func (s *Service) fetchLayer(ctx context.Context, img *registry.Image, l registry.Layer, out *Progress) error {
	id := shortID(l.Digest)
	var err error
	for attempt := 1; attempt <= fetchAttempts; attempt++ {
		if attempt > 1 {
			out.Status(id, fmt.Sprintf("Retrying in %d seconds", attempt-1))
			select {
			case <-time.After(time.Duration(attempt-1) * time.Second):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		var rc io.ReadCloser
		if rc, err = img.Fetch(l); err == nil {
			err = s.images.IngestLayer(&counter{r: rc, p: out, id: id, action: "Downloading", total: l.Size}, l.Digest)
			rc.Close()
		}
		if err == nil {
			out.Status(id, "Verifying Checksum")
			out.Status(id, "Download complete")
			return nil
		}
		if ctx.Err() != nil || errors.Is(err, errdefs.ErrInvalidArgument) {
			break // cancelled, or the content is wrong: retrying will not help
		}
	}
	return fmt.Errorf("failed to download layer %s: %w", l.Digest, err)
}

// Push sends the image name (with tag, or every local tag of the
// repository when tag is empty) to its registry.
func (s *Service) Push(ctx context.Context, name, tag string, auth registry.Auth, out *Progress) error {
	named, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument) // "invalid reference format..."
	}
	var refs []string
	if tag != "" {
		refs = []string{named.Name() + ":" + tag}
	} else if t, ok := named.(reference.Tagged); ok {
		refs = []string{named.Name() + ":" + t.Tag()}
	} else {
		all, err := s.images.List()
		if err != nil {
			return err
		}
		for _, img := range all {
			for _, n := range img.Names {
				if strings.HasPrefix(n, named.Name()+":") {
					refs = append(refs, n)
				}
			}
		}
	}
	if len(refs) == 0 {
		return fmt.Errorf("An image does not exist locally with the tag: %s: %w", reference.FamiliarName(named), errdefs.ErrNotFound)
	}
	for _, ref := range refs {
		if _, err := s.images.Get(ref); err != nil {
			return fmt.Errorf("An image does not exist locally with the tag: %s: %w", images.FamiliarName(ref), errdefs.ErrNotFound)
		}
	}
	out.Status("", "The push refers to repository ["+named.Name()+"]")
	for _, ref := range refs {
		if err := s.pushOne(ctx, ref, auth, out); err != nil {
			out.Fail(err)
			return nil
		}
	}
	return nil
}

func (s *Service) pushOne(ctx context.Context, ref string, auth registry.Auth, out *Progress) error {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument) // "invalid reference format..."
	}
	img, err := s.images.Get(ref)
	if err != nil {
		return err
	}
	plan, err := s.images.PlanPush(img)
	if err != nil {
		return err
	}
	r, err := s.reg.ParseReference(ref)
	if err != nil {
		return err
	}
	// Blobs may be mounted from other repositories of the same registry
	// that this image was pulled from or pushed to.
	repo := r.Context().RepositoryStr()
	var from []string
	for _, rd := range img.RepoDigests {
		other, err := reference.ParseNormalizedNamed(rd)
		if err == nil && reference.Domain(other) == reference.Domain(named) && reference.Path(other) != repo {
			from = append(from, reference.Path(other))
		}
	}
	p, err := s.reg.Pusher(ctx, r, auth, from)
	if err != nil {
		return err
	}
	for i := len(plan.Layers) - 1; i >= 0; i-- {
		out.Status(shortID(plan.Layers[i].Stored), "Preparing")
	}
	// The config and every layer at once (at most pushJobs at a time);
	// the manifest when they are all there.
	sem := make(chan struct{}, pushJobs)
	errs := make([]error, len(plan.Layers)+1)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if i == 0 {
				errs[i] = s.pushBlob(ctx, p, plan.Config, from, "", out)
			} else {
				errs[i] = s.pushLayer(ctx, p, &plan.Layers[i-1], from, out)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	raw, mediaType, err := plan.Build()
	if err != nil {
		return err
	}
	tag := "latest"
	if t, ok := named.(reference.Tagged); ok {
		tag = t.Tag()
	}
	md, err := p.PutManifest(ctx, tag, mediaType, raw)
	if err != nil {
		return err
	}
	out.Status("", fmt.Sprintf("%s: digest: %s size: %d", tag, md, len(raw)))
	out.Aux(map[string]any{"Tag": tag, "Digest": md.String(), "Size": len(raw)})
	if err := s.images.AddRepoDigest(img.ID, named.Name()+"@"+md.String(), raw); err != nil {
		return err
	}
	s.publish(events.ActionPush, img.ID.String(), ref)
	return nil
}

// pushLayer sends one layer. One with no compressed form yet is
// compressed while it is uploaded, as docker does; the compressed form is
// kept, so a later push of it can be skipped or mounted.
func (s *Service) pushLayer(ctx context.Context, p *registry.Pusher, l *images.PushLayer, from []string, out *Progress) error {
	id := shortID(l.Stored)
	if l.Digest != "" {
		return s.pushBlob(ctx, p, l.PushBlob, from, id, out)
	}
	pr, pw := io.Pipe()
	compressed := make(chan error, 1)
	go func() {
		b, err := s.images.CompressLayer(l.Stored, pw, func(r io.Reader) io.Reader {
			return &counter{r: r, p: out, id: id, action: "Pushing", total: l.StoredSize}
		})
		l.PushBlob = b
		pw.CloseWithError(err)
		compressed <- err
	}()
	got, _, err := p.UploadStream(ctx, pr)
	pr.CloseWithError(errors.New("upload ended")) // stops the compression if the upload failed
	cerr := <-compressed
	if err != nil {
		return err // the upload's error, not the compression's "upload ended"
	}
	if cerr != nil {
		return cerr
	}
	if got != l.Digest {
		return fmt.Errorf("layer %s: uploaded %s, stored %s", l.Stored, got, l.Digest)
	}
	out.Status(id, "Pushed")
	return nil
}

// pushBlob makes sure the registry has b: already there, mounted from a
// sibling repository, or uploaded. Layers (id set) are reported; the
// config is not.
func (s *Service) pushBlob(ctx context.Context, p *registry.Pusher, b images.PushBlob, from []string, id string, out *Progress) error {
	say := func(status string) {
		if id != "" {
			out.Status(id, status)
		}
	}
	ok, err := p.Exists(ctx, b.Digest)
	if err != nil {
		return err
	}
	if ok {
		say("Layer already exists")
		return nil
	}
	for _, f := range from {
		if ok, err := p.Mount(ctx, b.Digest, f); err == nil && ok {
			say("Mounted from " + f)
			return nil
		}
	}
	f, err := s.images.OpenBlob(b.Digest)
	if err != nil {
		return err
	}
	defer f.Close()
	var r io.Reader = f
	if id != "" {
		r = &counter{r: f, p: out, id: id, action: "Pushing", total: b.Size}
	}
	if err := p.Upload(ctx, b.Digest, b.Size, r); err != nil {
		return err
	}
	say("Pushed")
	return nil
}

// Login checks credentials with a registry (docker login).
func (s *Service) Login(ctx context.Context, auth registry.Auth) error {
	return s.reg.Login(ctx, auth)
}
