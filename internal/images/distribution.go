package images

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/distribution/reference"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	bolt "go.etcd.io/bbolt"
)

// Media types of Docker's v2 schema 2, the manifests docker pushes.
const (
	MediaTypeDockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
	MediaTypeDockerList     = "application/vnd.docker.distribution.manifest.list.v2+json"
	MediaTypeDockerConfig   = "application/vnd.docker.container.image.v1+json"
	MediaTypeDockerLayer    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
)

// gzipBucket maps an uncompressed layer blob to its gzip-compressed twin,
// made the first time the layer is pushed (registries get compressed
// layers), so that later pushes find the same digest without compressing.
var gzipBucket = []byte("gzip")

// Manifest is an image manifest in either schema (Docker v2.2 or OCI):
// the two differ only in media types.
type Manifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType,omitempty"`
	Config        ocispec.Descriptor   `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
}

// HasLayer tells whether layer i of an image with these diffIDs is here
// already: its blob stored and its snapshot unpacked.
func (s *Store) HasLayer(blob digest.Digest, diffIDs []digest.Digest, i int) bool {
	if _, err := s.cs.Size(blob); err != nil {
		return false
	}
	return s.hasChain(diffIDs, i)
}

// IngestLayer stores a layer blob, failing unless its content has the
// expected digest, so that nothing unverified is ever kept.
func (s *Store) IngestLayer(r io.Reader, expected digest.Digest) error {
	_, _, err := s.cs.Ingest(r, expected)
	return err
}

// UnpackLayer unpacks stored layer i of an image (the layers below it must
// be unpacked already) and checks it against diffIDs[i].
func (s *Store) UnpackLayer(blob digest.Digest, diffIDs []digest.Digest, i int) error {
	return s.unpack(blob, diffIDs, i)
}

// Pulled is an image fetched from a registry, its layers already stored
// and unpacked (IngestLayer, UnpackLayer).
type Pulled struct {
	// Name is the full reference to tag ("" when pulled by digest).
	Name string
	// Repo is the full repository name ("127.0.0.1:5000/app").
	Repo     string
	Manifest []byte
	Config   []byte
	Layers   []digest.Digest
}

// AddPulled records a pulled image: its config (whose digest is the image
// ID), its manifest (kept so that a push sends the very same bytes), the
// repo digest, and the tag. It tells whether Name pointed elsewhere before.
func (s *Store) AddPulled(p Pulled) (img *Image, changed bool, err error) {
	var conf ocispec.Image
	if err := json.Unmarshal(p.Config, &conf); err != nil {
		return nil, false, fmt.Errorf("malformed image config: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	if len(conf.RootFS.DiffIDs) != len(p.Layers) {
		return nil, false, fmt.Errorf("image config lists %d layers, the manifest %d: %w", len(conf.RootFS.DiffIDs), len(p.Layers), errdefs.ErrInvalidArgument)
	}
	id, err := s.cs.IngestBytes(p.Config, "")
	if err != nil {
		return nil, false, err
	}
	md, err := s.cs.IngestBytes(p.Manifest, "")
	if err != nil {
		return nil, false, err
	}
	repoDigest := p.Repo + "@" + md.String()
	created := time.Now().UTC()
	if conf.Created != nil {
		created = *conf.Created
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		img := &Image{ID: id, Layers: p.Layers, Created: created}
		if old := tx.Bucket(imagesBucket).Get([]byte(id.String())); old != nil {
			if err := json.Unmarshal(old, img); err != nil {
				return err
			}
		}
		if !contains(img.RepoDigests, repoDigest) {
			img.RepoDigests = append(img.RepoDigests, repoDigest)
		}
		v, err := json.Marshal(img)
		if err != nil {
			return err
		}
		if err := tx.Bucket(imagesBucket).Put([]byte(id.String()), v); err != nil {
			return err
		}
		if p.Name == "" {
			return nil
		}
		changed = string(tx.Bucket(namesBucket).Get([]byte(p.Name))) != id.String()
		return tag(tx, id, p.Name)
	})
	if err != nil {
		return nil, false, err
	}
	img, err = s.Get(id.String())
	return img, changed, err
}

// PushBlob is a blob a push sends.
type PushBlob struct {
	Digest    digest.Digest
	Size      int64
	MediaType string
}

// PushManifest returns the manifest to push for img and the blobs it
// names (config first). A pulled image that is unchanged gets the
// manifest it was pulled with, byte for byte (so its digest stays);
// others get a Docker v2.2 manifest (OCI when a layer is zstd), with any
// uncompressed layer gzip-compressed once and kept for next time.
func (s *Store) PushManifest(img *Image) (raw []byte, mediaType string, blobs []PushBlob, err error) {
	for _, rd := range img.RepoDigests {
		if raw, m, ok := s.storedManifest(img, rd); ok {
			blobs = append([]PushBlob{{m.Config.Digest, m.Config.Size, m.Config.MediaType}}, layerBlobs(m)...)
			return raw, m.MediaType, blobs, nil
		}
	}
	conf, err := s.cs.Size(img.ID)
	if err != nil {
		return nil, "", nil, err
	}
	oci := false
	var layers []PushBlob
	for _, l := range img.Layers {
		b, err := s.compressed(l)
		if err != nil {
			return nil, "", nil, err
		}
		oci = oci || b.MediaType == ocispec.MediaTypeImageLayerZstd
		layers = append(layers, b)
	}
	m := Manifest{SchemaVersion: 2, MediaType: MediaTypeDockerManifest,
		Config: ocispec.Descriptor{MediaType: MediaTypeDockerConfig, Digest: img.ID, Size: conf}}
	if oci {
		m.MediaType, m.Config.MediaType = ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig
	}
	for _, l := range layers {
		if oci && l.MediaType == MediaTypeDockerLayer {
			l.MediaType = ocispec.MediaTypeImageLayerGzip
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: l.MediaType, Digest: l.Digest, Size: l.Size})
	}
	raw, err = json.MarshalIndent(m, "", "   ")
	if err != nil {
		return nil, "", nil, err
	}
	blobs = append([]PushBlob{{m.Config.Digest, m.Config.Size, m.Config.MediaType}}, layerBlobs(&m)...)
	return raw, m.MediaType, blobs, nil
}

func layerBlobs(m *Manifest) []PushBlob {
	var out []PushBlob
	for _, l := range m.Layers {
		out = append(out, PushBlob{l.Digest, l.Size, l.MediaType})
	}
	return out
}

// storedManifest returns the manifest of repo digest rd if it is stored,
// describes img, and all its blobs are here.
func (s *Store) storedManifest(img *Image, rd string) ([]byte, *Manifest, bool) {
	_, d, ok := strings.Cut(rd, "@")
	if !ok {
		return nil, nil, false
	}
	f, err := s.cs.Open(digest.Digest(d))
	if err != nil {
		return nil, nil, false
	}
	raw, err := io.ReadAll(io.LimitReader(f, 4<<20))
	f.Close()
	var m Manifest
	if err != nil || json.Unmarshal(raw, &m) != nil || m.Config.Digest != img.ID {
		return nil, nil, false
	}
	for _, l := range m.Layers {
		if _, err := s.cs.Size(l.Digest); err != nil {
			return nil, nil, false
		}
	}
	return raw, &m, true
}

// compressed returns the compressed form of a stored layer blob: the blob
// itself when it is compressed, else its gzip twin (made now if needed).
func (s *Store) compressed(blob digest.Digest) (PushBlob, error) {
	mt, err := s.layerMediaType(blob)
	if err != nil {
		return PushBlob{}, err
	}
	if mt != ocispec.MediaTypeImageLayer {
		if mt == ocispec.MediaTypeImageLayerGzip {
			mt = MediaTypeDockerLayer
		}
		size, err := s.cs.Size(blob)
		return PushBlob{blob, size, mt}, err
	}
	var twin digest.Digest
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(gzipBucket); b != nil {
			twin = digest.Digest(b.Get([]byte(blob)))
		}
		return nil
	})
	if twin != "" {
		if size, err := s.cs.Size(twin); err == nil {
			return PushBlob{twin, size, MediaTypeDockerLayer}, nil
		}
	}
	f, err := s.cs.Open(blob)
	if err != nil {
		return PushBlob{}, err
	}
	defer f.Close()
	pr, pw := io.Pipe()
	go func() {
		zw := gzip.NewWriter(pw)
		_, err := io.Copy(zw, f)
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	twin, size, err := s.cs.Ingest(pr, "")
	pr.CloseWithError(err)
	if err != nil {
		return PushBlob{}, fmt.Errorf("compress layer %s: %w", blob, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(gzipBucket)
		if err != nil {
			return err
		}
		return b.Put([]byte(blob), []byte(twin))
	})
	return PushBlob{twin, size, MediaTypeDockerLayer}, err
}

// OpenBlob opens a stored blob for reading.
func (s *Store) OpenBlob(d digest.Digest) (io.ReadCloser, error) { return s.cs.Open(d) }

// AddRepoDigest records that img is known in a registry as repoDigest
// ("127.0.0.1:5000/app@sha256:..."), with the manifest pushed there.
func (s *Store) AddRepoDigest(id digest.Digest, repoDigest string, manifest []byte) error {
	if _, err := s.cs.IngestBytes(manifest, ""); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		return editImage(tx, id, func(img *Image) {
			if !contains(img.RepoDigests, repoDigest) {
				img.RepoDigests = append(img.RepoDigests, repoDigest)
			}
		})
	})
}

// getByDigest finds the image with repo digest ref ("name@sha256:...").
func (s *Store) getByDigest(ref string) (*Image, error) {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return nil, err
	}
	if _, ok := named.(reference.Digested); !ok {
		return nil, fmt.Errorf("%s has no digest", ref)
	}
	want := named.String()
	imgs, err := s.List()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		if contains(img.RepoDigests, want) {
			return img, nil
		}
	}
	return nil, fmt.Errorf("no such image: %s: %w", ref, errdefs.ErrNotFound)
}

// twinsAndManifests lists the blobs that belong to img beyond its config
// and layers: gzip twins of its layers and the manifests of its digests.
func (s *Store) twinsAndManifests(img *Image) []digest.Digest {
	var out []digest.Digest
	s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(gzipBucket); b != nil {
			for _, l := range img.Layers {
				if t := b.Get([]byte(l)); t != nil {
					out = append(out, digest.Digest(t))
				}
			}
		}
		return nil
	})
	for _, rd := range img.RepoDigests {
		if _, d, ok := strings.Cut(rd, "@"); ok {
			out = append(out, digest.Digest(d))
		}
	}
	return out
}
