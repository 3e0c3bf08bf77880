package builder

import (
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/images"
	bolt "go.etcd.io/bbolt"
)

// The cache index: a step's key (cacheKey) -> the ID of the cache image
// it made. The images themselves hold the layers (the image store keeps
// a layer while an image uses it), so an entry whose image is gone is a
// miss and nothing more.
var cacheBucket = []byte("build-cache")

// cached returns the state a step made before, unless noCache.
func (b *Builder) cached(key string, noCache bool) (state, bool) {
	if noCache {
		return state{}, false
	}
	var id digest.Digest
	b.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(cacheBucket).Get([]byte(key)); v != nil {
			id = digest.Digest(v)
		}
		return nil
	})
	if id == "" {
		return state{}, false
	}
	if _, err := b.images.Get(id.String()); err != nil {
		return state{}, false
	}
	conf, err := b.images.DockerConfig(id)
	if err != nil || !b.images.Unpacked(conf.RootFS.DiffIDs) {
		return state{}, false
	}
	return state{id: id, conf: *conf}, true
}

// remember records what a step made.
func (b *Builder) remember(key string, id digest.Digest) error {
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(cacheBucket).Put([]byte(key), []byte(id))
	})
}

// PruneResult is what a cache prune removed.
type PruneResult struct {
	Deleted   []string
	Reclaimed uint64
}

// Prune empties the build cache: the cache images no container uses
// (inUse says) and that are not a build's result, their layers where no
// other image holds them, the RUN --mount=type=cache directories, and
// the index.
func (b *Builder) Prune(inUse func(digest.Digest) bool, size func(*images.Image) int64) (PruneResult, error) {
	var res PruneResult
	list, err := b.images.List()
	if err != nil {
		return res, err
	}
	for _, img := range list {
		if !img.Cache || inUse(img.ID) {
			continue
		}
		n := size(img)
		if err := b.images.Delete(img.ID); err != nil {
			continue
		}
		res.Deleted = append(res.Deleted, img.ID.String())
		res.Reclaimed += uint64(n)
	}
	res.Reclaimed += uint64(dirSize(b.cacheMountsDir()))
	removeAll(b.cacheMountsDir())
	if err := os.MkdirAll(b.cacheMountsDir(), 0o700); err != nil {
		return res, err
	}
	err = b.db.Update(func(tx *bolt.Tx) error {
		if err := tx.DeleteBucket(cacheBucket); err != nil {
			return err
		}
		_, err := tx.CreateBucket(cacheBucket)
		return err
	})
	return res, err
}

func (b *Builder) cacheMountsDir() string { return filepath.Join(b.root, "cache-mounts") }

// dirSize adds up the sizes of the regular files under dir.
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}
