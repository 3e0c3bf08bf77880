package builder

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/snapshot"
	"golang.org/x/sys/unix"
)

// changeFS makes a step's change to the stage's file system: a snapshot
// on the stage's layers, mounted in the builder's own directory for fn
// (which says whether it changed anything). A change becomes the
// stage's next layer; no change leaves no layer. Nothing stays mounted.
func (sr *stageRun) changeFS(fn func(root string) (bool, error)) (bool, error) {
	parent := sr.cur.conf.RootFS.DiffIDs
	key := "build-" + randomID()
	ms, err := sr.b.snap.Prepare(key, images.ChainKey(parent))
	if err != nil {
		return false, err
	}
	changed, err := withMounted(sr.work, ms, fn)
	if err != nil || !changed {
		sr.b.snap.Remove(key)
		return false, err
	}
	diffID, err := sr.b.images.CommitLayer(key, parent, nil)
	if err != nil {
		sr.b.snap.Remove(key)
		return false, err
	}
	sr.cur.conf.RootFS.DiffIDs = append(append(sr.cur.conf.RootFS.DiffIDs[:0:0], parent...), diffID)
	return true, nil
}

// withMounted mounts ms on a fresh directory under work for fn, and
// unmounts it after.
func withMounted(work *workDir, ms []snapshot.Mount, fn func(root string) (bool, error)) (bool, error) {
	dir, err := work.path()
	if err != nil {
		return false, err
	}
	mnt, err := os.MkdirTemp(dir, "mnt-")
	if err != nil {
		return false, err
	}
	defer os.Remove(mnt)
	if len(ms) > 0 {
		if err := snapshot.MountAll(ms, mnt); err != nil {
			return false, err
		}
		defer unix.Unmount(mnt, unix.MNT_DETACH)
	}
	return fn(mnt)
}

// withView mounts the root file system of state st read-only for fn.
func (bd *build) withView(st *state, fn func(root string) error) error {
	key := "build-view-" + randomID()
	ms, err := bd.b.snap.View(key, images.ChainKey(st.conf.RootFS.DiffIDs))
	if err != nil {
		return err
	}
	defer bd.b.snap.Remove(key)
	_, err = withMounted(bd.work, ms, func(root string) (bool, error) { return false, fn(root) })
	return err
}

// secureJoin resolves rel inside root, symlinks included, never leaving it.
func secureJoin(root, rel string) (string, error) {
	return securejoin.SecureJoin(root, rel)
}

// mkdirAllIn makes dir (an absolute path in the container) inside root,
// resolving what exists in root's terms; directories it makes get mode
// 0755 and, when uid >= 0, that owner. It reports whether it made any.
func mkdirAllIn(root, dir string, uid, gid int) (bool, error) {
	made := false
	cur := "/"
	for _, part := range strings.Split(strings.Trim(filepath.Clean(dir), "/"), "/") {
		if part == "" {
			continue
		}
		next := filepath.Join(cur, part)
		host, err := secureJoin(root, next)
		if err != nil {
			return made, err
		}
		fi, err := os.Stat(host)
		switch {
		case err == nil && fi.IsDir():
		case err == nil:
			return made, fmt.Errorf("%s is not a directory", next)
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(host, 0o755); err != nil {
				return made, err
			}
			if uid >= 0 {
				if err := os.Lchown(host, uid, gid); err != nil {
					return made, err
				}
			}
			made = true
		default:
			return made, err
		}
		// The next part is resolved from what this one really is (a
		// symlink inside root is followed in root's terms).
		rel, err := filepath.Rel(root, host)
		if err != nil {
			return made, err
		}
		cur = "/" + rel
	}
	return made, nil
}
