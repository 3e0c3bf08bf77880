package images

import (
	"encoding/json"
	"fmt"
	"io"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/snapshot"
	bolt "go.etcd.io/bbolt"
)

// CommitLayer makes a layer of the active snapshot key, which was
// prepared on the chain of the layers parent (diffIDs, bottom first):
// its changes are stored as an uncompressed blob (its digest is the
// diffID), and the snapshot itself becomes the layer's committed
// snapshot, keyed by its chain ID, without being unpacked again. When
// that chain exists already (the same change made before), key is
// removed instead. skip are mount points to leave out of the layer (see
// archive.WriteDiff). The caller owns key until CommitLayer returns; on
// error key is left to it.
func (s *Store) CommitLayer(key string, parent []digest.Digest, skip map[string]bool) (digest.Digest, error) {
	diffID, err := s.ingestWritten(func(w io.Writer) (digest.Digest, error) {
		return s.snap.Diff(key, w, snapshot.DiffOpts{Skip: skip, Prune: true})
	})
	if err != nil {
		return "", fmt.Errorf("layer of %s: %w", key, err)
	}
	s.unpackMu.Lock()
	defer s.unpackMu.Unlock()
	chain := ChainKey(append(append([]digest.Digest(nil), parent...), diffID))
	if _, err := s.snap.Stat(chain); err == nil {
		return diffID, s.snap.Remove(key)
	}
	return diffID, s.snap.Commit(chain, key)
}

// AddLayer makes a layer of a snapshot that stays in use (a running
// container's, for commit): its changes are stored as a blob and
// unpacked into a snapshot of their own on the chain of parent.
func (s *Store) AddLayer(key string, parent []digest.Digest, skip map[string]bool) (digest.Digest, error) {
	diffID, err := s.AddLayerWritten(parent, func(w io.Writer) (digest.Digest, error) {
		return s.snap.Diff(key, w, snapshot.DiffOpts{Skip: skip})
	})
	if err != nil {
		return "", fmt.Errorf("layer of %s: %w", key, err)
	}
	return diffID, nil
}

// AddLayerWritten is AddLayer of what write writes (an uncompressed
// layer; it returns its diffID): the layer of a VM's disk, say.
func (s *Store) AddLayerWritten(parent []digest.Digest, write func(io.Writer) (digest.Digest, error)) (digest.Digest, error) {
	diffID, err := s.ingestWritten(write)
	if err != nil {
		return "", err
	}
	diffIDs := append(append([]digest.Digest(nil), parent...), diffID)
	return diffID, s.unpack(diffID, diffIDs, len(parent))
}

// ingestWritten stores what write writes as an uncompressed layer blob
// and checks that its digest is the diffID write returns.
func (s *Store) ingestWritten(write func(io.Writer) (digest.Digest, error)) (digest.Digest, error) {
	pr, pw := io.Pipe()
	type ingested struct {
		blob digest.Digest
		err  error
	}
	done := make(chan ingested, 1)
	go func() {
		blob, _, err := s.cs.Ingest(pr, "")
		pr.CloseWithError(err)
		done <- ingested{blob, err}
	}()
	diffID, err := write(pw)
	pw.CloseWithError(err)
	in := <-done
	if err == nil {
		err = in.err
	}
	if err != nil {
		return "", err
	}
	if in.blob != diffID {
		return "", fmt.Errorf("stored as %s, written as %s", in.blob, diffID)
	}
	return diffID, nil
}

// Create records an image made of conf, whose layers (conf.RootFS) are
// stored as uncompressed blobs and unpacked (by CommitLayer, a pull or a
// load). A cache image is a build's intermediate state: listed only on
// request, left alone by image prune; an image that is both (a build's
// result reused as another's step) is not a cache image.
func (s *Store) Create(conf *dockerspec.DockerOCIImage, cache bool) (*Image, error) {
	raw, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	if !s.Unpacked(conf.RootFS.DiffIDs) {
		return nil, fmt.Errorf("a layer of the image is not unpacked: %w", errdefs.ErrNotFound)
	}
	id, err := s.cs.IngestBytes(raw, "")
	if err != nil {
		return nil, err
	}
	created := conf.Created
	if created == nil {
		return nil, fmt.Errorf("image config without a creation time: %w", errdefs.ErrInvalidArgument)
	}
	if old, err := s.Get(id.String()); err == nil && (old.Cache == cache || !old.Cache) {
		return old, nil // made before (a rebuild): nothing to write
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		img := &Image{ID: id, Layers: append([]digest.Digest(nil), conf.RootFS.DiffIDs...), Created: *created, Cache: cache}
		if old := tx.Bucket(imagesBucket).Get([]byte(id.String())); old != nil {
			var prev Image
			if json.Unmarshal(old, &prev) == nil {
				img.Cache = prev.Cache && cache
				img.RepoDigests = prev.RepoDigests
				img.Created = prev.Created
			}
		}
		return putImage(tx, img)
	})
	if err != nil {
		return nil, err
	}
	return s.Get(id.String())
}

// DockerConfig reads an image's config with docker's fields beyond the
// OCI ones (Healthcheck, OnBuild, Shell).
func (s *Store) DockerConfig(id digest.Digest) (*dockerspec.DockerOCIImage, error) {
	var c dockerspec.DockerOCIImage
	return &c, s.readConfig(id, &c)
}

// Unpacked tells whether the snapshots of every layer of diffIDs exist.
func (s *Store) Unpacked(diffIDs []digest.Digest) bool {
	for i := range diffIDs {
		if !s.hasChain(diffIDs, i) {
			return false
		}
	}
	return true
}

// ChainKey returns the snapshot key of the layers diffIDs (bottom first),
// the parent of a snapshot made on top of them ("" for none).
func ChainKey(diffIDs []digest.Digest) string {
	if len(diffIDs) == 0 {
		return ""
	}
	return identity.ChainID(diffIDs).String()
}
