package snapshot

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// Kind of a snapshot.
type Kind string

// The kinds.
const (
	Active    Kind = "active"
	View      Kind = "view"
	Committed Kind = "committed"
)

// Info describes a snapshot.
type Info struct {
	Key     string    `json:"key"`
	Parent  string    `json:"parent,omitempty"`
	Kind    Kind      `json:"kind"`
	Created time.Time `json:"created"`
	ID      string    `json:"id"` // directory name under snapshots/
}

// Mount is one mount(2) call: mounting each in order on a target presents
// the snapshot there.
type Mount struct {
	Type    string
	Source  string
	Options []string
}

// Snapshotter manages snapshots. Keys are unique across kinds.
type Snapshotter interface {
	// Prepare creates an active snapshot key on parent ("" for none).
	Prepare(key, parent string) ([]Mount, error)
	// View creates a read-only snapshot key on parent.
	View(key, parent string) ([]Mount, error)
	// Mounts returns the mounts of an active or view snapshot.
	Mounts(key string) ([]Mount, error)
	// Commit makes the active snapshot key a committed one called name.
	Commit(name, key string) error
	// Remove deletes a snapshot that no other snapshot has as parent. Its
	// directory is deleted in the background (Close waits for that).
	Remove(key string) error
	// Stat describes a snapshot.
	Stat(key string) (Info, error)
	// Walk calls fn for every snapshot.
	Walk(fn func(Info) error) error
	// Usage is the bytes of the regular files a snapshot holds itself
	// (an active one's writable layer: docker's SizeRw).
	Usage(key string) (int64, error)
	// Unpack applies a layer to the active snapshot key, which must be
	// freshly prepared, directly on disk (no mount needed).
	Unpack(key string, layer io.Reader) (archive.Result, error)
	// Diff writes the changes of an active snapshot over its parent as a
	// layer tar (archive.WriteDiff's format) and returns its diffID.
	Diff(key string, w io.Writer, o DiffOpts) (digest.Digest, error)
	// Changes lists an active snapshot's changes over its parent, whose
	// content is mounted at lower (docker diff), skip as in DiffOpts.
	Changes(key, lower string, skip map[string]bool) ([]archive.Change, error)
	// Merged returns read-only mounts of an active snapshot's content as
	// it is now, which may be made while the snapshot is in use.
	Merged(key string) ([]Mount, error)
	Close() error
}

// backend is what differs between overlay and native.
// DiffOpts choose what Diff leaves out of a layer.
type DiffOpts struct {
	// Skip are mount points made for a container, left out where they
	// are empty (archive.WriteDiff).
	Skip map[string]bool
	// Prune removes the skipped paths from the snapshot too: it is about
	// to become the layer's snapshot (it must not be in use).
	Prune bool
}

type backend interface {
	// create fills the new snapshot directory dir given its parent chain
	// (nearest first).
	create(dir string, parents []string) error
	mounts(dir string, parents []string, readonly bool) []Mount
	whiteouts() archive.Whiteouts
	// diff writes the changes held in dir (see Snapshotter.Diff).
	diff(dir string, w io.Writer, o DiffOpts) (digest.Digest, error)
	changes(dir, lower string, skip map[string]bool) ([]archive.Change, error)
	// merged is the read-only view of dir's content over parents.
	merged(dir string, parents []string) []Mount
}

// store is the common part: metadata in bbolt, a directory per snapshot.
type store struct {
	root string
	db   *bolt.DB
	b    backend
	// removals are directory trees of removed snapshots still being
	// deleted in the background.
	removals sync.WaitGroup
}

var bucket = []byte("snapshots")

func open(root string, b backend) (*store, error) {
	if err := os.MkdirAll(filepath.Join(root, "snapshots"), 0o700); err != nil {
		return nil, err
	}
	db, err := bolt.Open(filepath.Join(root, "metadata.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("snapshot metadata: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	s := &store{root: root, db: db, b: b}
	if err := s.sweep(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// sweep removes directories without a record: what a crash between
// creating a directory and committing its record left behind.
func (s *store) sweep() error {
	known := map[string]bool{}
	if err := s.Walk(func(i Info) error { known[i.ID] = true; return nil }); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(s.root, "snapshots"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !known[e.Name()] {
			if err := removeTree(filepath.Join(s.root, "snapshots", e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// Close waits for the background removals and closes the metadata.
func (s *store) Close() error {
	s.removals.Wait()
	return s.db.Close()
}

func (s *store) dir(id string) string { return filepath.Join(s.root, "snapshots", id) }

func get(tx *bolt.Tx, key string) (Info, error) {
	v := tx.Bucket(bucket).Get([]byte(key))
	if v == nil {
		return Info{}, fmt.Errorf("snapshot %q: %w", key, errdefs.ErrNotFound)
	}
	var i Info
	return i, json.Unmarshal(v, &i)
}

func put(tx *bolt.Tx, i Info) error {
	v, err := json.Marshal(i)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(i.Key), v)
}

// chain returns the directories of parent and its ancestors, nearest first.
func (s *store) chain(tx *bolt.Tx, parent string) ([]string, error) {
	var dirs []string
	for p := parent; p != ""; {
		i, err := get(tx, p)
		if err != nil {
			return nil, err
		}
		if i.Kind != Committed {
			return nil, fmt.Errorf("parent %q is not committed: %w", p, errdefs.ErrInvalidArgument)
		}
		dirs = append(dirs, filepath.Join(s.dir(i.ID), "fs"))
		p = i.Parent
	}
	return dirs, nil
}

func (s *store) Prepare(key, parent string) ([]Mount, error) { return s.create(key, parent, Active) }
func (s *store) View(key, parent string) ([]Mount, error)    { return s.create(key, parent, View) }

// create makes the directory first and records it last, in one
// transaction: a crash leaves at worst a directory that sweep removes.
func (s *store) create(key, parent string, kind Kind) ([]Mount, error) {
	if key == "" {
		return nil, fmt.Errorf("empty snapshot key: %w", errdefs.ErrInvalidArgument)
	}
	var m []Mount
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := get(tx, key); err == nil {
			return fmt.Errorf("snapshot %q: %w", key, errdefs.ErrAlreadyExists)
		}
		parents, err := s.chain(tx, parent)
		if err != nil {
			return err
		}
		seq, err := tx.Bucket(bucket).NextSequence()
		if err != nil {
			return err
		}
		id := strconv.FormatUint(seq, 10)
		dir := s.dir(id)
		if err := os.MkdirAll(filepath.Join(dir, "fs"), 0o755); err != nil {
			return err
		}
		if err := s.b.create(dir, parents); err != nil {
			_ = removeTree(dir)
			return err
		}
		if err := put(tx, Info{Key: key, Parent: parent, Kind: kind, Created: time.Now().UTC(), ID: id}); err != nil {
			_ = removeTree(dir)
			return err
		}
		m = s.b.mounts(dir, parents, kind == View)
		return nil
	})
	return m, err
}

func (s *store) Mounts(key string) ([]Mount, error) {
	var m []Mount
	err := s.db.View(func(tx *bolt.Tx) error {
		i, err := get(tx, key)
		if err != nil {
			return err
		}
		if i.Kind == Committed {
			return fmt.Errorf("snapshot %q is committed and cannot be mounted: %w", key, errdefs.ErrInvalidArgument)
		}
		parents, err := s.chain(tx, i.Parent)
		if err != nil {
			return err
		}
		m = s.b.mounts(s.dir(i.ID), parents, i.Kind == View)
		return nil
	})
	return m, err
}

func (s *store) Commit(name, key string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		i, err := get(tx, key)
		if err != nil {
			return err
		}
		if i.Kind != Active {
			return fmt.Errorf("snapshot %q is %s, not active: %w", key, i.Kind, errdefs.ErrInvalidArgument)
		}
		if _, err := get(tx, name); err == nil {
			return fmt.Errorf("snapshot %q: %w", name, errdefs.ErrAlreadyExists)
		}
		if err := tx.Bucket(bucket).Delete([]byte(key)); err != nil {
			return err
		}
		i.Key, i.Kind = name, Committed
		return put(tx, i)
	})
}

func (s *store) Remove(key string) error {
	var dir string
	err := s.db.Update(func(tx *bolt.Tx) error {
		i, err := get(tx, key)
		if err != nil {
			return err
		}
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			var o Info
			if json.Unmarshal(v, &o) == nil && o.Parent == key {
				return fmt.Errorf("snapshot %q is the parent of %q: %w", key, o.Key, errdefs.ErrConflict)
			}
		}
		dir = s.dir(i.ID)
		return tx.Bucket(bucket).Delete([]byte(key))
	})
	if err != nil {
		return err
	}
	// The record is gone, so the directory is garbage: it is deleted in
	// the background (a container's removal need not wait for thousands of
	// unlinks), and what a crash or an error leaves, sweep removes at the
	// next open. Its ID is never handed out again.
	s.removals.Add(1)
	go func() {
		defer s.removals.Done()
		_ = removeTree(dir)
	}()
	return nil
}

func (s *store) Stat(key string) (Info, error) {
	var i Info
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		i, err = get(tx, key)
		return err
	})
	return i, err
}

func (s *store) Usage(key string) (int64, error) {
	info, err := s.Stat(key)
	if err != nil {
		return 0, err
	}
	// As dockerd counts a layer: the bytes of its files and symlinks,
	// each hard-linked file once.
	var n int64
	seen := map[uint64]bool{}
	err = filepath.WalkDir(filepath.Join(s.dir(info.ID), "fs"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: not counted
		}
		if !d.Type().IsRegular() && d.Type()&fs.ModeSymlink == 0 {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return nil
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		n += fi.Size()
		return nil
	})
	return n, err
}

func (s *store) Walk(fn func(Info) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(_, v []byte) error {
			var i Info
			if err := json.Unmarshal(v, &i); err != nil {
				return err
			}
			return fn(i)
		})
	})
}

func (s *store) Unpack(key string, layer io.Reader) (archive.Result, error) {
	i, err := s.Stat(key)
	if err != nil {
		return archive.Result{}, err
	}
	if i.Kind != Active {
		return archive.Result{}, fmt.Errorf("snapshot %q is %s, not active: %w", key, i.Kind, errdefs.ErrInvalidArgument)
	}
	return archive.Apply(filepath.Join(s.dir(i.ID), "fs"), layer, s.b.whiteouts())
}

// removeTree removes a snapshot directory, including immutable-looking
// leftovers: it first makes sure nothing is still mounted below it.
func (s *store) Diff(key string, w io.Writer, o DiffOpts) (digest.Digest, error) {
	i, err := s.active(key)
	if err != nil {
		return "", err
	}
	return s.b.diff(s.dir(i.ID), w, o)
}

func (s *store) Changes(key, lower string, skip map[string]bool) ([]archive.Change, error) {
	i, err := s.active(key)
	if err != nil {
		return nil, err
	}
	return s.b.changes(s.dir(i.ID), lower, skip)
}

func (s *store) Merged(key string) ([]Mount, error) {
	var m []Mount
	err := s.db.View(func(tx *bolt.Tx) error {
		i, err := get(tx, key)
		if err != nil {
			return err
		}
		if i.Kind != Active {
			return fmt.Errorf("snapshot %q is %s, not active: %w", key, i.Kind, errdefs.ErrInvalidArgument)
		}
		parents, err := s.chain(tx, i.Parent)
		if err != nil {
			return err
		}
		m = s.b.merged(s.dir(i.ID), parents)
		return nil
	})
	return m, err
}

// active returns the record of active snapshot key.
func (s *store) active(key string) (Info, error) {
	i, err := s.Stat(key)
	if err == nil && i.Kind != Active {
		err = fmt.Errorf("snapshot %q is %s, not active: %w", key, i.Kind, errdefs.ErrInvalidArgument)
	}
	return i, err
}

func removeTree(dir string) error {
	_ = unix.Unmount(dir, unix.MNT_DETACH)
	return os.RemoveAll(dir)
}
