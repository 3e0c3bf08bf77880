package images

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"path"
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

// Load adds the images of a docker-save archive (either format: docker's
// classic one or the OCI layout with manifest.json that newer docker
// writes) and returns them. Entry names are never used as paths on disk:
// every file goes to the content store and is found there by name, so a
// hostile archive cannot write anywhere. A failure keeps nothing new.
func (s *Store) Load(r io.Reader) ([]*Image, error) {
	files := map[string]digest.Digest{} // archive path -> blob
	var ingested []digest.Digest
	fail := func(err error) ([]*Image, error) {
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
	var out []*Image
	for _, m := range manifests {
		img, err := s.loadOne(m, files)
		if err != nil {
			return fail(err)
		}
		out = append(out, img)
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
		return nil, fmt.Errorf("load: no manifest.json: not a docker-save archive: %w", errdefs.ErrInvalidArgument)
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

func (s *Store) loadOne(m dockerManifest, files map[string]digest.Digest) (*Image, error) {
	find := func(name string) (digest.Digest, error) {
		d, ok := files[path.Clean(name)]
		if !ok {
			return "", fmt.Errorf("load: %s is named in manifest.json but not in the archive: %w", name, errdefs.ErrInvalidArgument)
		}
		return d, nil
	}
	id, err := find(m.Config)
	if err != nil {
		return nil, err
	}
	var conf ocispec.Image
	if err := s.readJSON(id, &conf); err != nil {
		return nil, fmt.Errorf("load: malformed image config %s: %v: %w", m.Config, err, errdefs.ErrInvalidArgument)
	}
	if len(conf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("load: config has %d layers, manifest.json %d: %w", len(conf.RootFS.DiffIDs), len(m.Layers), errdefs.ErrInvalidArgument)
	}
	var layers []digest.Digest
	for i, l := range m.Layers {
		blob, err := find(l)
		if err != nil {
			return nil, err
		}
		// Unpacking checks the layer against the config's diffID.
		if err := s.unpack(blob, conf.RootFS.DiffIDs, i); err != nil {
			return nil, fmt.Errorf("load: layer %s: %w", l, err)
		}
		layers = append(layers, blob)
	}
	var names []string
	for _, t := range m.RepoTags {
		full, err := Normalize(t)
		if err != nil {
			return nil, err
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
		return nil, err
	}
	return s.Get(id.String())
}
