package builder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/userdb"
	"golang.org/x/sys/unix"
)

// copier writes sources into a root file system.
type copier struct {
	root     string
	uid, gid int // -1: keep the source's (or root's, for the context)
	mode     os.FileMode
	excludes *patternmatcher.PatternMatcher
	dirTimes []dirTime
}

type dirTime struct {
	path  string
	mtime time.Time
}

func newCopier(root, chown string, mode os.FileMode, exclude []string) (*copier, error) {
	c := &copier{root: root, uid: -1, gid: -1, mode: mode}
	if chown != "" {
		u, err := userdb.ResolveUser(root, chown)
		if err != nil {
			return nil, fmt.Errorf("--chown=%s: %w", chown, err)
		}
		c.uid, c.gid = int(u.UID), int(u.GID)
		if !strings.Contains(chown, ":") {
			c.gid = c.uid // a user alone: its ID is the group's too, as docker
		}
	}
	if len(exclude) > 0 {
		pm, err := patternmatcher.New(exclude)
		if err != nil {
			return nil, fmt.Errorf("--exclude: %w: %w", err, errdefs.ErrInvalidArgument)
		}
		c.excludes = pm
	}
	return c, nil
}

// owner is who owns a copied entry.
func (c *copier) owner(s source, st *syscall.Stat_t) (int, int) {
	if c.uid >= 0 {
		return c.uid, c.gid
	}
	if s.fromImage && st != nil {
		return int(st.Uid), int(st.Gid)
	}
	return 0, 0
}

// copySource copies one source to dest (a directory when destDir).
func (c *copier) copySource(s source, dest string, destDir bool) error {
	fi, err := os.Stat(s.path)
	if err != nil {
		return err
	}
	dirUID, dirGID := c.uid, c.gid
	if dirUID < 0 {
		dirUID, dirGID = 0, 0
	}
	switch {
	case fi.IsDir():
		if _, err := mkdirAllIn(c.root, dest, dirUID, dirGID); err != nil {
			return err
		}
		return c.tree(s, s.path, dest)
	case s.extract:
		if _, err := mkdirAllIn(c.root, dest, dirUID, dirGID); err != nil {
			return err
		}
		target, err := secureJoin(c.root, dest)
		if err != nil {
			return err
		}
		f, err := os.Open(s.path)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = archive.Apply(target, f, archive.Plain)
		return err
	}
	target := dest
	if destDir || c.isDir(dest) {
		target = path.Join(dest, s.base)
	}
	if _, err := mkdirAllIn(c.root, path.Dir(target), dirUID, dirGID); err != nil {
		return err
	}
	var st *syscall.Stat_t
	if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
		st = sys
	}
	return c.entry(s, s.path, fi, st, target)
}

func (c *copier) isDir(p string) bool {
	host, err := secureJoin(c.root, p)
	if err != nil {
		return false
	}
	fi, err := os.Stat(host)
	return err == nil && fi.IsDir()
}

// tree copies the content of directory src into dest.
func (c *copier) tree(s source, src, dest string) error {
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		if c.excludes != nil {
			if skip, err := c.excludes.MatchesOrParentMatches(rel); err != nil {
				return err
			} else if skip {
				if d.IsDir() && !c.excludes.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, _ := fi.Sys().(*syscall.Stat_t)
		return c.entry(s, p, fi, st, path.Join(dest, filepath.ToSlash(rel)))
	})
}

// entry writes one file, directory, link or device at target (a path in
// the root, whose parent exists), replacing what is there but a
// directory by a directory.
func (c *copier) entry(s source, src string, fi fs.FileInfo, st *syscall.Stat_t, target string) error {
	parent, err := secureJoin(c.root, path.Dir(target))
	if err != nil {
		return err
	}
	host := filepath.Join(parent, path.Base(target))
	uid, gid := c.owner(s, st)
	mode := fi.Mode().Perm() | fi.Mode()&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if s.mode != 0 {
		mode = s.mode
	}
	if c.mode&modeSet != 0 {
		mode = c.mode &^ modeSet
	}
	if old, err := os.Lstat(host); err == nil {
		switch {
		case old.IsDir() && fi.IsDir():
			return nil // merged into: the directory keeps its metadata
		case old.IsDir():
			return fmt.Errorf("cannot overwrite directory %s with non-directory", target)
		default:
			if err := os.Remove(host); err != nil {
				return err
			}
		}
	}
	switch {
	case fi.IsDir():
		if err := os.Mkdir(host, 0o700); err != nil {
			return err
		}
		c.dirTimes = append(c.dirTimes, dirTime{host, fi.ModTime()})
	case fi.Mode().IsRegular():
		if err := copyFile(src, host); err != nil {
			return err
		}
	case fi.Mode()&fs.ModeSymlink != 0:
		link, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(link, host); err != nil {
			return err
		}
		return lchownTimes(host, uid, gid, fi.ModTime())
	default:
		if st == nil || !s.fromImage {
			return nil // sockets and the like: not copied
		}
		if err := unix.Mknod(host, st.Mode, int(st.Rdev)); err != nil {
			return err
		}
	}
	if err := os.Lchown(host, uid, gid); err != nil {
		return err
	}
	if err := os.Chmod(host, mode); err != nil {
		return err
	}
	return os.Chtimes(host, fi.ModTime(), fi.ModTime())
}

func lchownTimes(p string, uid, gid int, t time.Time) error {
	if err := os.Lchown(p, uid, gid); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(t.UnixNano()), unix.NsecToTimespec(t.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// finish sets the copied directories' times, deepest first (writing
// into a directory changes its time).
func (c *copier) finish() error {
	for i := len(c.dirTimes) - 1; i >= 0; i-- {
		d := c.dirTimes[i]
		if err := os.Chtimes(d.path, d.mtime, d.mtime); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	return nil
}
