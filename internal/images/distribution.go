package images

import (
	"bufio"
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

// A PushPlan is what pushing an image sends: its config and its layers,
// bottom first, then a manifest naming them.
type PushPlan struct {
	Config PushBlob
	Layers []PushLayer
	// Manifest, when set, is the manifest this image was pulled or pushed
	// with, to push again byte for byte (so its digest stays).
	Manifest  []byte
	MediaType string
}

// A PushLayer is one layer: as stored, and in the form that is pushed.
type PushLayer struct {
	Stored     digest.Digest // the stored blob (the diff ID when uncompressed)
	StoredSize int64
	// PushBlob is the compressed form: the stored blob itself when it is
	// compressed, or its gzip twin; Digest is empty when the twin is yet
	// to be made (CompressLayer).
	PushBlob
}

// PlanPush says what pushing img takes. An unchanged pulled (or pushed)
// image gets the manifest it came with; others get a Docker v2.2 manifest
// (OCI when a layer is zstd) from Build, with every uncompressed layer
// sent as its gzip twin, made once and kept for next time.
func (s *Store) PlanPush(img *Image) (*PushPlan, error) {
	for _, rd := range img.RepoDigests {
		if raw, m, ok := s.storedManifest(img, rd); ok {
			p := &PushPlan{Config: PushBlob{m.Config.Digest, m.Config.Size, m.Config.MediaType}, Manifest: raw, MediaType: m.MediaType}
			for _, b := range layerBlobs(m) {
				p.Layers = append(p.Layers, PushLayer{Stored: b.Digest, StoredSize: b.Size, PushBlob: b})
			}
			return p, nil
		}
	}
	conf, err := s.cs.Size(img.ID)
	if err != nil {
		return nil, err
	}
	p := &PushPlan{Config: PushBlob{img.ID, conf, MediaTypeDockerConfig}}
	for _, l := range img.Layers {
		size, err := s.cs.Size(l)
		if err != nil {
			return nil, err
		}
		b, err := s.compressedForm(l, size)
		if err != nil {
			return nil, err
		}
		p.Layers = append(p.Layers, PushLayer{Stored: l, StoredSize: size, PushBlob: b})
	}
	return p, nil
}

// Build returns the manifest to push once every layer has its compressed
// form (a stored manifest as it is).
func (p *PushPlan) Build() (raw []byte, mediaType string, err error) {
	if p.Manifest != nil {
		return p.Manifest, p.MediaType, nil
	}
	oci := false
	for _, l := range p.Layers {
		if l.Digest == "" {
			return nil, "", fmt.Errorf("layer %s has no compressed form", l.Stored)
		}
		oci = oci || l.MediaType == ocispec.MediaTypeImageLayerZstd
	}
	m := Manifest{SchemaVersion: 2, MediaType: MediaTypeDockerManifest,
		Config: ocispec.Descriptor{MediaType: MediaTypeDockerConfig, Digest: p.Config.Digest, Size: p.Config.Size}}
	if oci {
		m.MediaType, m.Config.MediaType = ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig
	}
	for _, l := range p.Layers {
		mt := l.MediaType
		if oci && mt == MediaTypeDockerLayer {
			mt = ocispec.MediaTypeImageLayerGzip
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: l.Digest, Size: l.Size})
	}
	raw, err = json.MarshalIndent(m, "", "   ")
	return raw, m.MediaType, err
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

// compressedForm is how stored layer blob travels: itself when stored
// compressed, else its gzip twin (no Digest when there is none yet).
func (s *Store) compressedForm(blob digest.Digest, size int64) (PushBlob, error) {
	mt, err := s.layerMediaType(blob)
	if err != nil {
		return PushBlob{}, err
	}
	switch mt {
	case ocispec.MediaTypeImageLayerGzip:
		return PushBlob{blob, size, MediaTypeDockerLayer}, nil
	case ocispec.MediaTypeImageLayerZstd:
		return PushBlob{blob, size, mt}, nil
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
	return PushBlob{MediaType: MediaTypeDockerLayer}, nil
}

// CompressLayer makes the gzip twin of uncompressed layer blob, stores it
// and records it, and writes the compressed bytes to w as they are made
// (an upload, so that compressing and sending overlap). wrap, if set,
// wraps the reader of the uncompressed layer (for progress).
func (s *Store) CompressLayer(blob digest.Digest, w io.Writer, wrap func(io.Reader) io.Reader) (PushBlob, error) {
	f, err := s.cs.Open(blob)
	if err != nil {
		return PushBlob{}, err
	}
	defer f.Close()
	var src io.Reader = f
	if wrap != nil {
		src = wrap(f)
	}
	pr, pw := io.Pipe()
	go func() {
		// The compressor writes small pieces; hand them on in large ones
		// (a write and an HTTP chunk each, for the store and the upload).
		bw := bufio.NewWriterSize(io.MultiWriter(pw, w), 1<<20)
		zw := gzip.NewWriter(bw)
		_, err := io.Copy(zw, src)
		if err == nil {
			err = zw.Close()
		}
		if err == nil {
			err = bw.Flush()
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
