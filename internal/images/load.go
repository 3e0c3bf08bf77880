package images

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"path"
	goruntime "runtime"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	bolt "go.etcd.io/bbolt"
)

// dockerManifest is one entry of a docker-save archive's manifest.json.
type dockerManifest struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// Load adds the images of a docker-save archive (docker's classic format,
// the OCI layout with manifest.json that newer docker writes, or a bare
// OCI image layout such as skopeo's and buildkit's oci-archive) and
// returns them. Entry names are never used as paths on disk:
// every file goes to the content store and is found there by name, so a
// hostile archive cannot write anywhere. A failure keeps nothing new.
func (s *Store) Load(r io.Reader) ([]Loaded, error) {
	files := map[string]digest.Digest{} // archive path -> blob
	var ingested []digest.Digest
	fail := func(err error) ([]Loaded, error) {
		s.dropUnused(ingested)
		return nil, err
	}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fail(fmt.Errorf("load: malformed archive: %v: %w", err, errdefs.ErrInvalidArgument))
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		d, _, err := s.cs.Ingest(tr, "")
		if err != nil {
			return fail(fmt.Errorf("load: %s: %w", hdr.Name, err))
		}
		ingested = append(ingested, d)
		files[path.Clean(hdr.Name)] = d
	}
	manifests, err := s.readManifest(files)
	if err != nil {
		return fail(err)
	}
	var out []Loaded
	for _, m := range manifests {
		l, err := s.loadOne(m, files)
		if err != nil {
			return fail(err)
		}
		out = append(out, l)
	}
	// Drop what no image refers to (VERSION files, layer json, ...).
	s.dropUnused(ingested)
	return out, nil
}

func (s *Store) readJSON(d digest.Digest, v any) error {
	f, err := s.cs.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	return json.NewDecoder(f).Decode(v)
}

func (s *Store) readManifest(files map[string]digest.Digest) ([]dockerManifest, error) {
	d, ok := files["manifest.json"]
	if !ok {
		if _, layout := files[ocispec.ImageLayoutFile]; layout {
			return s.ociManifests(files)
		}
		return nil, fmt.Errorf("load: no manifest.json or oci-layout: not an image archive: %w", errdefs.ErrInvalidArgument)
	}
	var ms []dockerManifest
	if err := s.readJSON(d, &ms); err != nil {
		return nil, fmt.Errorf("load: malformed manifest.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(ms) == 0 {
		return nil, fmt.Errorf("load: manifest.json lists no image: %w", errdefs.ErrInvalidArgument)
	}
	return ms, nil
}

// ociManifests reads a bare OCI image layout: index.json names manifests
// (or nested indexes, of which this platform's manifest is taken) by
// digest under blobs/. Every blob named must hash to its digest. An image
// is tagged from the containerd name annotation, or from
// org.opencontainers.image.ref.name when that is a full reference
// ("name:tag"; a bare tag names nothing).
func (s *Store) ociManifests(files map[string]digest.Digest) ([]dockerManifest, error) {
	blobPath := func(d digest.Digest) (string, error) {
		if err := d.Validate(); err != nil {
			return "", fmt.Errorf("load: bad digest %q: %w", d, errdefs.ErrInvalidArgument)
		}
		p := path.Join(ocispec.ImageBlobsDir, d.Algorithm().String(), d.Encoded())
		if got, ok := files[p]; !ok {
			return "", fmt.Errorf("load: %s is named but not in the archive: %w", p, errdefs.ErrInvalidArgument)
		} else if got != d {
			return "", fmt.Errorf("load: %s holds %s: digest mismatch: %w", p, got, errdefs.ErrInvalidArgument)
		}
		return p, nil
	}
	idx, ok := files[ocispec.ImageIndexFile]
	if !ok {
		return nil, fmt.Errorf("load: OCI layout without index.json: %w", errdefs.ErrInvalidArgument)
	}
	var index ocispec.Index
	if err := s.readJSON(idx, &index); err != nil {
		return nil, fmt.Errorf("load: malformed index.json: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	var out []dockerManifest
	for _, desc := range index.Manifests {
		m, err := s.ociManifest(desc, blobPath, 0)
		if err != nil {
			return nil, err
		}
		name := desc.Annotations["io.containerd.image.name"]
		if ref := desc.Annotations[ocispec.AnnotationRefName]; name == "" && strings.ContainsAny(ref, ":/") {
			name = ref
		}
		if name != "" {
			m.RepoTags = []string{name}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("load: index.json lists no image: %w", errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// ociManifest turns one index entry into the archive paths of its config
// and layers, descending into a nested index for this platform.
func (s *Store) ociManifest(desc ocispec.Descriptor, blobPath func(digest.Digest) (string, error), depth int) (dockerManifest, error) {
	var m dockerManifest
	p, err := blobPath(desc.Digest)
	if err != nil {
		return m, err
	}
	switch desc.MediaType {
	case ocispec.MediaTypeImageIndex, MediaTypeDockerList:
		var index ocispec.Index
		if err := s.readJSON(desc.Digest, &index); err != nil || depth > 2 {
			return m, fmt.Errorf("load: malformed index %s: %w", p, errdefs.ErrInvalidArgument)
		}
		for _, d := range index.Manifests {
			if d.Platform == nil || d.Platform.OS == "linux" && d.Platform.Architecture == goruntime.GOARCH {
				return s.ociManifest(d, blobPath, depth+1)
			}
		}
		return m, fmt.Errorf("load: %s has no image for linux/%s: %w", p, goruntime.GOARCH, errdefs.ErrNotFound)
	case ocispec.MediaTypeImageManifest, MediaTypeDockerManifest:
	default:
		return m, fmt.Errorf("load: %s: unsupported media type %q: %w", p, desc.MediaType, errdefs.ErrInvalidArgument)
	}
	var man ocispec.Manifest
	if err := s.readJSON(desc.Digest, &man); err != nil {
		return m, fmt.Errorf("load: malformed manifest %s: %v: %w", p, err, errdefs.ErrInvalidArgument)
	}
	if m.Config, err = blobPath(man.Config.Digest); err != nil {
		return m, err
	}
	for _, l := range man.Layers {
		lp, err := blobPath(l.Digest)
		if err != nil {
			return m, err
		}
		m.Layers = append(m.Layers, lp)
	}
	return m, nil
}

// Loaded is an image that Load added, with the names the archive gave it
// (normalized; the image may have others from before).
type Loaded struct {
	*Image
	Tags []string
}

func (s *Store) loadOne(m dockerManifest, files map[string]digest.Digest) (Loaded, error) {
	find := func(name string) (digest.Digest, error) {
		d, ok := files[path.Clean(name)]
		if !ok {
			return "", fmt.Errorf("load: %s is named in manifest.json but not in the archive: %w", name, errdefs.ErrInvalidArgument)
		}
		return d, nil
	}
	id, err := find(m.Config)
	if err != nil {
		return Loaded{}, err
	}
	var conf ocispec.Image
	if err := s.readJSON(id, &conf); err != nil {
		return Loaded{}, fmt.Errorf("load: malformed image config %s: %v: %w", m.Config, err, errdefs.ErrInvalidArgument)
	}
	if len(conf.RootFS.DiffIDs) != len(m.Layers) {
		return Loaded{}, fmt.Errorf("load: config has %d layers, manifest.json %d: %w", len(conf.RootFS.DiffIDs), len(m.Layers), errdefs.ErrInvalidArgument)
	}
	var layers []digest.Digest
	for i, l := range m.Layers {
		blob, err := find(l)
		if err != nil {
			return Loaded{}, err
		}
		// Unpacking checks the layer against the config's diffID.
		if err := s.unpack(blob, conf.RootFS.DiffIDs, i); err != nil {
			return Loaded{}, fmt.Errorf("load: layer %s: %w", l, err)
		}
		layers = append(layers, blob)
	}
	var names []string
	for _, t := range m.RepoTags {
		full, err := Normalize(t)
		if err != nil {
			return Loaded{}, err
		}
		names = append(names, full)
	}
	created := time.Now().UTC()
	if conf.Created != nil {
		created = *conf.Created
	}
	img := &Image{ID: id, Layers: layers, Created: created}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := putImage(tx, img); err != nil {
			return err
		}
		for _, n := range names {
			if err := tag(tx, id, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return Loaded{}, err
	}
	got, err := s.Get(id.String())
	return Loaded{Image: got, Tags: names}, err
}
