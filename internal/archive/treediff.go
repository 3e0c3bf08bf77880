package archive

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Layers of whole file systems: where a container's changes are not an
// overlay's upper directory (a VM's disk), they are what one tree has
// that another, the image's, has not: compared entry by entry, as
// docker's naive differ does.

// TreeChanges lists what tree changed changes over tree base (paths
// absolute, parents first): a path only base has is deleted (its
// children are not listed), one only changed has is added, one whose
// type, mode, owner, device, size, modification time or link target
// differ is modified, and a directory above any change is modified too,
// as an overlay copies it up. Paths of ignore (relative) are left out
// with what is below them; skip is as WriteDiff's, judged in changed.
// Paths are resolved inside each tree: a symlink cannot lead the
// comparison out of it.
func TreeChanges(base, changed string, skip, ignore map[string]bool) ([]Change, error) {
	kinds := map[string]int{}
	err := filepath.WalkDir(changed, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(changed, p)
		if rel == "." {
			return nil
		}
		if ignore[rel] || leftOut(changed, rel, skip) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var now, was unix.Stat_t
		if err := unix.Lstat(p, &now); err != nil {
			return err
		}
		old, err := inTree(base, rel)
		if err == nil {
			err = unix.Lstat(old, &was)
		}
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR):
			kinds[rel] = ChangeAdd
		case err != nil:
			return err
		case !sameEntry(&was, &now, old, p):
			kinds[rel] = ChangeModify
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(base, p)
		if rel == "." {
			return nil
		}
		if ignore[rel] {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		now, err := inTree(changed, rel)
		if err == nil {
			_, err = os.Lstat(now)
		}
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ENOTDIR) {
			kinds[rel] = ChangeDelete
			if d.IsDir() {
				return filepath.SkipDir
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// The directories above a change are modified (copied up), as in an
	// overlay's diff.
	for rel := range kinds {
		for dir := filepath.Dir(rel); dir != "."; dir = filepath.Dir(dir) {
			if _, ok := kinds[dir]; !ok {
				kinds[dir] = ChangeModify
			}
		}
	}
	out := make([]Change, 0, len(kinds))
	for rel, k := range kinds {
		out = append(out, Change{Path: "/" + rel, Kind: k})
	}
	// Parents first: "/" sorts before any other byte of a name.
	slices.SortFunc(out, func(a, b Change) int {
		return strings.Compare(strings.ReplaceAll(a.Path, "/", "\x00"), strings.ReplaceAll(b.Path, "/", "\x00"))
	})
	return out, nil
}

// inTree is rel's path in root, its parents resolved inside root.
func inTree(root, rel string) (string, error) {
	parent, err := securejoin.SecureJoin(root, filepath.Dir(rel))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, filepath.Base(rel)), nil
}

// sameEntry compares two entries' metadata (and a symlink's target).
func sameEntry(a, b *unix.Stat_t, pa, pb string) bool {
	if a.Mode != b.Mode || a.Uid != b.Uid || a.Gid != b.Gid || a.Rdev != b.Rdev {
		return false
	}
	switch a.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return true // a directory changes with what it holds (above)
	case unix.S_IFLNK:
		ta, _ := os.Readlink(pa)
		tb, _ := os.Readlink(pb)
		return ta == tb
	}
	return a.Size == b.Size && a.Mtim == b.Mtim
}

// WriteTreeDiff writes changes (TreeChanges') of tree changed as an image
// layer: added and modified paths as their entries in changed, deleted
// ones as whiteouts. It returns the layer's diffID.
func WriteTreeDiff(w io.Writer, changed string, changes []Change) (digest.Digest, error) {
	return writeLayer(w, &differ{upper: changed, flat: true}, func(d *differ) error {
		for _, ch := range changes {
			rel := strings.TrimPrefix(ch.Path, "/")
			var err error
			if ch.Kind == ChangeDelete {
				err = d.marker(filepath.Join(filepath.Dir(rel), whPrefix+filepath.Base(rel)))
			} else {
				err = d.entry(rel)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}
