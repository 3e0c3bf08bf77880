package daemon

import (
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/storage"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/spec"
)

func (d *Daemon) imageEvent(action events.Action, id, name string) {
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	d.event(events.ImageEventType, action, id, attrs)
}

// imageSize is the sum of the image's stored layers (uncompressed for
// imported images, as given for loaded ones).
func (d *Daemon) imageSize(img *images.Image) int64 {
	var n int64
	for _, sz := range d.layerSizesOf(img) {
		n += sz
	}
	return n
}

// layerSizesOf are the sizes of img's layers as dockerd counts them: the
// bytes of each layer's files once unpacked (not the blob's, which a
// pulled image has compressed). Where the layer's own files cannot be
// counted (the native snapshotter keeps whole copies), the blob's size.
func (d *Daemon) layerSizesOf(img *images.Image) []int64 {
	out := make([]int64, len(img.Layers))
	var diffIDs []digest.Digest
	if cfg, err := d.images.Config(img.ID); err == nil && len(cfg.RootFS.DiffIDs) == len(img.Layers) && d.driver == overlayDriver {
		diffIDs = cfg.RootFS.DiffIDs
	}
	for i, l := range img.Layers {
		if diffIDs == nil {
			out[i], _ = d.content.Size(l)
			continue
		}
		key := images.ChainKey(diffIDs[:i+1])
		d.layerSizeMu.Lock()
		n, ok := d.layerSizes[key]
		d.layerSizeMu.Unlock()
		if !ok {
			var err error
			if n, err = d.snap.Usage(key); err != nil {
				out[i], _ = d.content.Size(l)
				continue
			}
			d.layerSizeMu.Lock()
			if d.layerSizes == nil {
				d.layerSizes = map[string]int64{}
			}
			d.layerSizes[key] = n
			d.layerSizeMu.Unlock()
		}
		out[i] = n
	}
	return out
}

func familiar(names []string) (tags, digests []string) {
	tags, digests = []string{}, []string{}
	for _, n := range names {
		if strings.Contains(n, "@") {
			digests = append(digests, images.FamiliarName(n))
		} else {
			tags = append(tags, images.FamiliarName(n))
		}
	}
	return tags, digests
}

// ImageList lists images, newest first, as GET /images/json.
// With sharedSize, each image's SharedSize (else -1, as dockerd).
func (d *Daemon) ImageList(all bool, filters map[string][]string, sharedSize bool) ([]image.Summary, error) {
	for k := range filters {
		switch k {
		case "dangling", "label", "reference":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	list, err := d.images.List()
	if err != nil {
		return nil, err
	}
	users := map[string]int64{}
	for _, c := range d.all() {
		users[c.Image]++
	}
	var shared map[digest.Digest]int64
	if sharedSize {
		shared, _ = d.sharedSizes(list)
	}
	out := []image.Summary{}
	for _, img := range list {
		if isCache(img) && !all {
			continue
		}
		cfg, err := d.images.Config(img.ID)
		if err != nil {
			return nil, err
		}
		tags, digests := familiar(append(img.Names, img.RepoDigests...))
		if !imageMatches(tags, cfg.Config.Labels, filters) {
			continue
		}
		created := img.Created
		if cfg.Created != nil {
			created = *cfg.Created
		}
		out = append(out, image.Summary{
			ID: img.ID.String(), RepoTags: tags, RepoDigests: digests, Created: created.Unix(),
			Size: d.imageSize(img), SharedSize: -1, Labels: cfg.Config.Labels, Containers: users[img.ID.String()],
		})
		if sharedSize {
			out[len(out)-1].SharedSize = shared[img.ID]
		}
	}
	return out, nil
}

func imageMatches(tags []string, labels map[string]string, f map[string][]string) bool {
	if v := f["dangling"]; len(v) > 0 {
		dangling := len(tags) == 0
		if (v[0] == "true" || v[0] == "1") != dangling {
			return false
		}
	}
	if refs := f["reference"]; len(refs) > 0 {
		ok := false
		for _, pattern := range refs {
			for _, t := range tags {
				if matchReference(pattern, t) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return allLabels(labels, f["label"])
}

// matchReference matches "busybox", "busybox:tag" or a glob like "busy*".
func matchReference(pattern, tag string) bool {
	repo, _, _ := strings.Cut(tag, ":")
	for _, cand := range []string{tag, repo} {
		if ok, _ := path.Match(pattern, cand); ok {
			return true
		}
	}
	return false
}

// ImageInspect describes an image, as GET /images/{name}/json.
func (d *Daemon) ImageInspect(ref string) (*image.InspectResponse, error) {
	img, cfg, err := d.image(ref)
	if err != nil {
		return nil, err
	}
	tags, digests := familiar(append(img.Names, img.RepoDigests...))
	r := &image.InspectResponse{
		ID: img.ID.String(), RepoTags: tags, RepoDigests: digests, Author: cfg.Author,
		Config: &dockerspec.DockerOCIImageConfig{ImageConfig: cfg.Config}, Architecture: cfg.Architecture,
		Variant: cfg.Variant, Os: cfg.OS, Size: d.imageSize(img),
		GraphDriver: &storage.DriverData{Name: d.driver, Data: map[string]string{}},
		RootFS:      image.RootFS{Type: cfg.RootFS.Type},
	}
	if dc, err := d.images.DockerConfig(img.ID); err == nil {
		r.Config = &dc.Config // with Healthcheck, OnBuild and Shell
	}
	if cfg.Created != nil {
		r.Created = cfg.Created.Format(time.RFC3339Nano)
	}
	for _, l := range cfg.RootFS.DiffIDs {
		r.RootFS.Layers = append(r.RootFS.Layers, l.String())
	}
	if len(cfg.History) > 0 {
		r.Comment = cfg.History[len(cfg.History)-1].Comment
	}
	return r, nil
}

func (d *Daemon) image(ref string) (*images.Image, *ocispec.Image, error) {
	img, err := d.images.Get(ref)
	if err != nil {
		if errdefs.IsNotFound(err) {
			return nil, nil, fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
		}
		return nil, nil, err
	}
	cfg, err := d.images.Config(img.ID)
	return img, cfg, err
}

// ImageHistory lists the image's history, newest first.
func (d *Daemon) ImageHistory(ref string) ([]image.HistoryResponseItem, error) {
	img, cfg, err := d.image(ref)
	if err != nil {
		return nil, err
	}
	out := []image.HistoryResponseItem{}
	sizes := d.layerSizesOf(img)
	layer := len(img.Layers) - 1
	for i := len(cfg.History) - 1; i >= 0; i-- {
		h := cfg.History[i]
		item := image.HistoryResponseItem{ID: "<missing>", Comment: h.Comment, CreatedBy: h.CreatedBy, Tags: []string{}}
		if h.Created != nil {
			item.Created = h.Created.Unix()
		}
		if !h.EmptyLayer && layer >= 0 {
			item.Size = sizes[layer]
			layer--
		}
		if i == len(cfg.History)-1 {
			item.ID = img.ID.String()
			item.Tags, _ = familiar(img.Names)
		}
		out = append(out, item)
	}
	return out, nil
}

// ImageImport makes an image from a root file system tarball, applying
// Dockerfile-style changes (CMD, ENV, ...), as POST /images/create?fromSrc=-.
func (d *Daemon) ImageImport(r io.Reader, name string, changes []string, message string) (*images.Image, error) {
	var cfg ocispec.ImageConfig
	for _, ch := range changes {
		if err := applyChange(&cfg, ch); err != nil {
			return nil, err
		}
	}
	if message == "" {
		message = "Imported from -"
	}
	img, err := d.images.Import(r, name, cfg, message)
	if err != nil {
		return nil, err
	}
	d.imageEvent(events.ActionImport, img.ID.String(), name)
	return img, nil
}

// ImageLoad adds the images of a docker-save or OCI archive.
func (d *Daemon) ImageLoad(r io.Reader) ([]images.Loaded, error) {
	list, err := d.images.Load(r)
	if err != nil {
		return nil, err
	}
	for _, img := range list {
		d.imageEvent(events.ActionLoad, img.ID.String(), strings.Join(img.Tags, ","))
	}
	return list, nil
}

// ImageSave writes the named images as one docker-save archive.
func (d *Daemon) ImageSave(w io.Writer, refs []string) error {
	for _, r := range refs {
		if _, _, err := d.image(r); err != nil {
			return err
		}
	}
	return d.images.Save(w, refs)
}

// ImageTag names an image.
func (d *Daemon) ImageTag(ref, name string) error {
	img, _, err := d.image(ref)
	if err != nil {
		return err
	}
	if err := d.images.Tag(img.ID, name); err != nil {
		return err
	}
	d.imageEvent(events.ActionTag, img.ID.String(), name)
	return nil
}

// ImageRemove untags (and, with its last name gone, deletes) an image, as
// `docker rmi`: an image that a container uses stays unless forced, and a
// running container's image stays even then.
func (d *Daemon) ImageRemove(ref string, force bool) ([]image.DeleteResponse, error) {
	d.imageMu.Lock()
	defer d.imageMu.Unlock()
	img, _, err := d.image(ref)
	if err != nil {
		return nil, err
	}
	byID := strings.HasPrefix(img.ID.Encoded(), strings.TrimPrefix(ref, "sha256:"))
	var untag []string
	if byID {
		if len(img.Names) > 1 && !force {
			return nil, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories: %w", short(img.ID), errdefs.ErrConflict)
		}
		untag = img.Names
	} else {
		full, err := images.Normalize(ref)
		if err != nil {
			return nil, err
		}
		untag = []string{full}
	}
	last := len(untag) == len(img.Names)
	user, inUse := d.imageInUse(img.ID)
	if last && inUse {
		running := false
		if c, err := d.get(user); err == nil {
			c.mu.Lock()
			running = c.running()
			c.mu.Unlock()
		}
		switch {
		case running:
			return nil, fmt.Errorf("conflict: unable to delete %s (cannot be forced) - image is being used by running container %s: %w", short(img.ID), user[:12], errdefs.ErrConflict)
		case !force && byID:
			return nil, fmt.Errorf("conflict: unable to delete %s (must be forced) - image is being used by stopped container %s: %w", short(img.ID), user[:12], errdefs.ErrConflict)
		case !force:
			return nil, fmt.Errorf("conflict: unable to remove repository reference %q (must force) - container %s is using its referenced image %s: %w", ref, user[:12], short(img.ID), errdefs.ErrConflict)
		}
	}
	out := []image.DeleteResponse{}
	for _, n := range untag {
		if _, err := d.images.Untag(n); err != nil {
			return out, err
		}
		out = append(out, image.DeleteResponse{Untagged: images.FamiliarName(n)})
		d.imageEvent(events.ActionUnTag, img.ID.String(), n)
	}
	if last && !inUse {
		if err := d.images.Delete(img.ID); err != nil {
			return out, err
		}
		out = append(out, image.DeleteResponse{Deleted: img.ID.String()})
		d.imageEvent(events.ActionDelete, img.ID.String(), "")
	}
	return out, nil
}

func short(id digest.Digest) string { return id.Encoded()[:12] }

// ImagePrune deletes dangling images (all unused ones with all) that no
// container uses.
func (d *Daemon) ImagePrune(all bool, f backend.PruneFilter) ([]image.DeleteResponse, error) {
	list, err := d.images.List()
	if err != nil {
		return nil, err
	}
	out := []image.DeleteResponse{}
	for _, img := range list {
		if (len(img.Names) > 0 && !all) || isCache(img) {
			continue // build cache goes with builder prune
		}
		var labels map[string]string
		if cfg, err := d.images.Config(img.ID); err == nil {
			labels = cfg.Config.Labels
		}
		if !f.Matches(img.Created, labels) {
			continue
		}
		if _, used := d.imageInUse(img.ID); used {
			continue
		}
		resp, err := d.ImageRemove(img.ID.String(), true)
		if err != nil {
			return out, err
		}
		out = append(out, resp...)
	}
	return out, nil
}

// applyChange applies one Dockerfile instruction of `import --change`.
func applyChange(cfg *ocispec.ImageConfig, change string) error {
	instr, arg, _ := strings.Cut(strings.TrimSpace(change), " ")
	arg = strings.TrimSpace(arg)
	bad := func(why string) error {
		return fmt.Errorf("invalid change %q: %s: %w", change, why, errdefs.ErrInvalidArgument)
	}
	cmdForm := func() []string {
		var list []string
		if strings.HasPrefix(arg, "[") && json.Unmarshal([]byte(arg), &list) == nil {
			return list
		}
		return []string{"/bin/sh", "-c", arg}
	}
	switch strings.ToUpper(instr) {
	case "CMD":
		cfg.Cmd = cmdForm()
	case "ENTRYPOINT":
		cfg.Entrypoint = cmdForm()
	case "WORKDIR":
		cfg.WorkingDir = arg
	case "USER":
		cfg.User = arg
	case "STOPSIGNAL":
		cfg.StopSignal = arg
	case "ENV":
		pairs, err := keyValues(arg)
		if err != nil {
			return bad(err.Error())
		}
		for _, kv := range pairs {
			cfg.Env = spec.MergeEnv(cfg.Env, []string{kv[0] + "=" + kv[1]})
		}
	case "LABEL":
		pairs, err := keyValues(arg)
		if err != nil {
			return bad(err.Error())
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range pairs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		if cfg.ExposedPorts == nil {
			cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range strings.Fields(arg) {
			if !strings.Contains(p, "/") {
				p += "/tcp"
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	case "VOLUME":
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		var list []string
		if json.Unmarshal([]byte(arg), &list) != nil {
			list = strings.Fields(arg)
		}
		for _, v := range list {
			cfg.Volumes[v] = struct{}{}
		}
	default:
		return bad("only CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR can be changed")
	}
	return nil
}

// keyValues parses "k=v k2=v2" (values may be double-quoted) or the old
// "k v" form.
func keyValues(s string) ([][2]string, error) {
	if !strings.Contains(strings.SplitN(s, " ", 2)[0], "=") {
		k, v, ok := strings.Cut(s, " ")
		if !ok || k == "" {
			return nil, fmt.Errorf("expected KEY=VALUE or KEY VALUE")
		}
		return [][2]string{{k, strings.TrimSpace(v)}}, nil
	}
	var out [][2]string
	for s = strings.TrimSpace(s); s != ""; s = strings.TrimSpace(s) {
		k, rest, ok := strings.Cut(s, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, fmt.Errorf("expected KEY=VALUE")
		}
		var v string
		if strings.HasPrefix(rest, `"`) {
			end := strings.Index(rest[1:], `"`)
			if end < 0 {
				return nil, fmt.Errorf("unterminated quote")
			}
			v, s = rest[1:end+1], rest[end+2:]
		} else {
			v, s, _ = strings.Cut(rest, " ")
		}
		out = append(out, [2]string{k, v})
	}
	return out, nil
}
