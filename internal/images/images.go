package images

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/distribution/reference"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/identity"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/content"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/snapshot"
	bolt "go.etcd.io/bbolt"
)

// Image is one image as the store records it.
type Image struct {
	// ID is the digest of the config.
	ID digest.Digest `json:"id"`
	// Layers are the blobs of the layers, bottom first, as stored.
	Layers []digest.Digest `json:"layers"`
	// Names are the references that point at the image.
	Names []string `json:"names,omitempty"`
	// RepoDigests are the image's names in registries, by manifest digest
	// ("127.0.0.1:5000/app@sha256:..."), from pulls and pushes.
	RepoDigests []string  `json:"repoDigests,omitempty"`
	Created     time.Time `json:"created"`
	// Cache marks a build's intermediate state (see Create).
	Cache bool `json:"buildCache,omitempty"`
}

// Store keeps images.
type Store struct {
	db   *bolt.DB
	cs   *content.Store
	snap snapshot.Snapshotter
	// unpackMu serializes unpacking: two pulls of one layer must not
	// share (and remove) each other's work-in-progress snapshot.
	unpackMu sync.Mutex

	configsMu sync.Mutex
	configs   map[digest.Digest][]byte // image configs read lately (configCache)
}

// configCache is how many image configs the store keeps in memory: a
// build's cached steps read one each, and a file's open, read and close
// cost more than the JSON's decoding (a few KB each).
const configCache = 256

var (
	imagesBucket = []byte("images") // ID -> Image
	namesBucket  = []byte("names")  // normalized reference -> ID
)

// New returns the image store over a bbolt database, a content store and
// a snapshotter, all owned by the caller.
func New(db *bolt.DB, cs *content.Store, snap snapshot.Snapshotter) (*Store, error) {
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{imagesBucket, namesBucket} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	return &Store{db: db, cs: cs, snap: snap, configs: map[digest.Digest][]byte{}}, err
}

// Normalize turns a name as users type it into the full reference docker
// would use: "busybox" -> "docker.io/library/busybox:latest".
func Normalize(name string) (string, error) {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", fmt.Errorf("invalid reference %q: %v: %w", name, err, errdefs.ErrInvalidArgument)
	}
	return reference.TagNameOnly(ref).String(), nil
}

// FamiliarName is the short form docker shows: "busybox:latest".
func FamiliarName(full string) string {
	ref, err := reference.ParseNormalizedNamed(full)
	if err != nil {
		return full
	}
	return reference.FamiliarString(ref)
}

// Config returns the image's config.
func (s *Store) Config(id digest.Digest) (*ocispec.Image, error) {
	var c ocispec.Image
	return &c, s.readConfig(id, &c)
}

// readConfig decodes the config blob of image id into v.
func (s *Store) readConfig(id digest.Digest, v any) error {
	s.configsMu.Lock()
	b, ok := s.configs[id]
	s.configsMu.Unlock()
	if !ok {
		f, err := s.cs.Open(id)
		if err != nil {
			return fmt.Errorf("image %s: %w", id.Encoded()[:12], err)
		}
		b, err = io.ReadAll(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("image %s: %w", id.Encoded()[:12], err)
		}
		s.configsMu.Lock()
		if len(s.configs) >= configCache {
			for d := range s.configs { // one out, at random
				delete(s.configs, d)
				break
			}
		}
		s.configs[id] = b
		s.configsMu.Unlock()
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("image %s: corrupt config: %w", id, err)
	}
	return nil
}

// deleteBlob deletes a blob of the content store, and its config from
// memory.
func (s *Store) deleteBlob(d digest.Digest) {
	s.configsMu.Lock()
	delete(s.configs, d)
	s.configsMu.Unlock()
	_ = s.cs.Delete(d)
}

// Get finds an image by name, full or short ID ("sha256:abc..", "abc1").
func (s *Store) Get(nameOrID string) (*Image, error) {
	if strings.Contains(nameOrID, "@") {
		return s.getByDigest(nameOrID)
	}
	var img *Image
	err := s.db.View(func(tx *bolt.Tx) error {
		var id []byte
		if full, err := Normalize(nameOrID); err == nil {
			id = tx.Bucket(namesBucket).Get([]byte(full))
		}
		if id == nil {
			prefix := strings.TrimPrefix(nameOrID, "sha256:")
			if len(prefix) >= 4 && strings.Trim(prefix, "0123456789abcdef") == "" {
				c := tx.Bucket(imagesBucket).Cursor()
				want := []byte("sha256:" + prefix)
				for k, _ := c.Seek(want); k != nil && strings.HasPrefix(string(k), string(want)); k, _ = c.Next() {
					if id != nil {
						return fmt.Errorf("image ID prefix %q is ambiguous: %w", nameOrID, errdefs.ErrInvalidArgument)
					}
					id = k
				}
			}
		}
		if id == nil {
			return fmt.Errorf("no such image: %s: %w", nameOrID, errdefs.ErrNotFound)
		}
		v := tx.Bucket(imagesBucket).Get(id)
		if v == nil {
			return fmt.Errorf("no such image: %s: %w", nameOrID, errdefs.ErrNotFound)
		}
		img = &Image{}
		return json.Unmarshal(v, img)
	})
	return img, err
}

// List returns every image, newest first.
func (s *Store) List() ([]*Image, error) {
	var out []*Image
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(imagesBucket).ForEach(func(_, v []byte) error {
			img := &Image{}
			if err := json.Unmarshal(v, img); err != nil {
				return err
			}
			out = append(out, img)
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out, err
}

// Tag points name at the image id, moving it from any other image.
func (s *Store) Tag(id digest.Digest, name string) error {
	full, err := Normalize(name)
	if err != nil {
		return err
	}
	var already bool
	s.db.View(func(tx *bolt.Tx) error {
		already = string(tx.Bucket(namesBucket).Get([]byte(full))) == id.String()
		return nil
	})
	if already {
		return nil // no write (and no sync) for a name that is in place
	}
	return s.db.Update(func(tx *bolt.Tx) error { return tag(tx, id, full) })
}

func tag(tx *bolt.Tx, id digest.Digest, full string) error {
	if old := tx.Bucket(namesBucket).Get([]byte(full)); old != nil && string(old) != id.String() {
		if err := editImage(tx, digest.Digest(old), func(img *Image) { img.Names = without(img.Names, full) }); err != nil {
			return err
		}
	}
	if err := editImage(tx, id, func(img *Image) {
		if !contains(img.Names, full) {
			img.Names = append(img.Names, full)
		}
	}); err != nil {
		return err
	}
	return tx.Bucket(namesBucket).Put([]byte(full), []byte(id.String()))
}

func editImage(tx *bolt.Tx, id digest.Digest, edit func(*Image)) error {
	b := tx.Bucket(imagesBucket)
	v := b.Get([]byte(id.String()))
	if v == nil {
		return fmt.Errorf("image %s: %w", id, errdefs.ErrNotFound)
	}
	img := &Image{}
	if err := json.Unmarshal(v, img); err != nil {
		return err
	}
	edit(img)
	nv, err := json.Marshal(img)
	if err != nil {
		return err
	}
	return b.Put([]byte(id.String()), nv)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func without(list []string, s string) []string {
	var out []string
	for _, x := range list {
		if x != s {
			out = append(out, x)
		}
	}
	return out
}

// Import makes a one-layer image from a root file system tarball (plain,
// gzip or zstd), as `docker import` does, and names it (if name is set).
// The layer is unpacked while it is stored; a bad tarball leaves nothing.
// comment is the history's (docker's default: "Imported from -").
func (s *Store) Import(r io.Reader, name string, cfg ocispec.ImageConfig, comment string, platform ocispec.Platform) (*Image, error) {
	if platform.OS == "" {
		platform = ocispec.Platform{Architecture: runtime.GOARCH, OS: "linux"}
	}
	full := ""
	if name != "" {
		var err error
		if full, err = Normalize(name); err != nil {
			return nil, err
		}
	}
	// Store the blob first (verified, atomic), then unpack it from the store.
	plain, err := archive.Decompress(r)
	if err != nil {
		return nil, err
	}
	defer plain.Close()
	blob, _, err := s.cs.Ingest(plain, "")
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	// The stored blob is the uncompressed tar: its digest is the diffID.
	if err := s.unpack(blob, []digest.Digest{blob}, 0); err != nil {
		s.dropUnused([]digest.Digest{blob})
		return nil, fmt.Errorf("import: %w", err)
	}
	now := time.Now().UTC()
	conf := ocispec.Image{
		Created:  &now,
		Platform: platform,
		Config:   cfg,
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{blob}},
		History:  []ocispec.History{{Created: &now, CreatedBy: "", Comment: comment}},
	}
	raw, err := json.Marshal(conf)
	if err != nil {
		return nil, err
	}
	id, err := s.cs.IngestBytes(raw, "")
	if err != nil {
		return nil, err
	}
	img := &Image{ID: id, Layers: []digest.Digest{blob}, Created: now}
	err = s.db.Update(func(tx *bolt.Tx) error {
		if err := putImage(tx, img); err != nil {
			return err
		}
		if full != "" {
			return tag(tx, id, full)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.Get(id.String())
}

func putImage(tx *bolt.Tx, img *Image) error {
	b := tx.Bucket(imagesBucket)
	if old := b.Get([]byte(img.ID.String())); old != nil {
		var prev Image
		if json.Unmarshal(old, &prev) == nil {
			img.Names = prev.Names
		}
	}
	v, err := json.Marshal(img)
	if err != nil {
		return err
	}
	return b.Put([]byte(img.ID.String()), v)
}

// unpack makes sure the committed snapshot of layer i exists (keyed by the
// chainID of diffIDs[:i+1]), applying the blob on top of the one below.
func (s *Store) unpack(blob digest.Digest, diffIDs []digest.Digest, i int) error {
	s.unpackMu.Lock()
	defer s.unpackMu.Unlock()
	chain := identity.ChainID(diffIDs[:i+1]).String()
	if s.hasChain(diffIDs, i) {
		return nil // shared with an image we already have
	}
	parent := ""
	if i > 0 {
		parent = identity.ChainID(diffIDs[:i]).String()
	}
	key := "unpack-" + chain
	_ = s.snap.Remove(key) // a leftover of an interrupted unpack
	if _, err := s.snap.Prepare(key, parent); err != nil {
		return err
	}
	f, err := s.cs.Open(blob)
	if err != nil {
		_ = s.snap.Remove(key)
		return err
	}
	res, err := s.snap.Unpack(key, f)
	f.Close()
	if err == nil && res.DiffID != diffIDs[i] {
		err = fmt.Errorf("layer %s unpacks to %s, but the image says %s: %w", blob, res.DiffID, diffIDs[i], errdefs.ErrInvalidArgument)
	}
	if err == nil {
		err = s.snap.Commit(chain, key)
	}
	if err != nil {
		_ = s.snap.Remove(key)
		return err
	}
	return nil
}

// hasChain tells whether the snapshot of layers 0..i is unpacked.
func (s *Store) hasChain(diffIDs []digest.Digest, i int) bool {
	_, err := s.snap.Stat(identity.ChainID(diffIDs[:i+1]).String())
	return err == nil
}

// blobUsed reports whether any image refers to blob.
func (s *Store) blobUsed(blob digest.Digest) bool {
	imgs, _ := s.List()
	for _, img := range imgs {
		if img.ID == blob {
			return true
		}
		for _, l := range img.Layers {
			if l == blob {
				return true
			}
		}
	}
	return false
}

// dropUnused deletes the blobs of ds that no image refers to.
func (s *Store) dropUnused(ds []digest.Digest) {
	for _, d := range ds {
		if !s.blobUsed(d) {
			s.deleteBlob(d)
		}
	}
}

// RootFS returns the snapshot key of the image's top layer, the parent of
// any container made from it.
func (s *Store) RootFS(img *Image) (string, error) {
	c, err := s.Config(img.ID)
	if err != nil {
		return "", err
	}
	if len(c.RootFS.DiffIDs) == 0 {
		return "", nil
	}
	key := identity.ChainID(c.RootFS.DiffIDs).String()
	if _, err := s.snap.Stat(key); err != nil {
		return "", fmt.Errorf("image %s is not unpacked: %w", img.ID, err)
	}
	return key, nil
}

// Untag removes a name; the image stays (with its other names).
func (s *Store) Untag(name string) (digest.Digest, error) {
	full, err := Normalize(name)
	if err != nil {
		return "", err
	}
	var id digest.Digest
	err = s.db.Update(func(tx *bolt.Tx) error {
		v := tx.Bucket(namesBucket).Get([]byte(full))
		if v == nil {
			return fmt.Errorf("no such image: %s: %w", name, errdefs.ErrNotFound)
		}
		id = digest.Digest(v)
		if err := tx.Bucket(namesBucket).Delete([]byte(full)); err != nil {
			return err
		}
		return editImage(tx, id, func(img *Image) { img.Names = without(img.Names, full) })
	})
	return id, err
}

// Delete removes the image record and its config; layers shared with other
// images stay. The caller checks that no container uses it.
func (s *Store) Delete(id digest.Digest) error {
	img, err := s.Get(id.String())
	if err != nil {
		return err
	}
	conf, err := s.Config(img.ID)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, n := range img.Names {
			if err := tx.Bucket(namesBucket).Delete([]byte(n)); err != nil {
				return err
			}
		}
		return tx.Bucket(imagesBucket).Delete([]byte(img.ID.String()))
	})
	if err != nil {
		return err
	}
	s.gc(img, conf)
	return nil
}

// blobs lists every stored blob that belongs to img: config, layers, their
// compressed twins and its manifests.
func (img *Image) blobs(s *Store) []digest.Digest {
	out := append([]digest.Digest{img.ID}, img.Layers...)
	return append(out, s.twinsAndManifests(img)...)
}

// gc removes the snapshots and blobs of img that no remaining image uses,
// top layer first. Best effort: what stays is found again by a later gc.
func (s *Store) gc(img *Image, conf *ocispec.Image) {
	s.release(img.blobs(s), conf.RootFS.DiffIDs)
}

// Abandon removes what a failed pull left: the layer blobs and unpacked
// snapshots of diffIDs that no image uses.
func (s *Store) Abandon(blobs, diffIDs []digest.Digest) {
	s.release(blobs, diffIDs)
}

// release removes, of the given blobs and of the snapshot chains of
// diffIDs, those that no image uses.
func (s *Store) release(blobs, diffIDs []digest.Digest) {
	used := map[string]bool{}
	usedBlobs := map[digest.Digest]bool{}
	others, _ := s.List()
	for _, o := range others {
		for _, b := range o.blobs(s) {
			usedBlobs[b] = true
		}
		if c, err := s.Config(o.ID); err == nil {
			for i := range c.RootFS.DiffIDs {
				used[identity.ChainID(c.RootFS.DiffIDs[:i+1]).String()] = true
			}
		}
	}
	for i := len(diffIDs); i > 0; i-- {
		chain := identity.ChainID(diffIDs[:i]).String()
		if !used[chain] {
			if err := s.snap.Remove(chain); err != nil && !errdefs.IsNotFound(err) {
				break // a container (or another chain) still builds on it
			}
		}
	}
	for _, b := range blobs {
		if !usedBlobs[b] {
			s.deleteBlob(b)
		}
	}
}
