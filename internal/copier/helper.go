package copier

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/userdb"
	"golang.org/x/sys/unix"
)

// Main is the helper: `copier stat|get PATH` or `copier put DIR
// [--no-overwrite-dir-non-dir] [--owner USER]`, with the container's root
// as descriptor 3. It answers one JSON line on stdout (the path's stat or
// an error), then for get the tar.
func Main(args []string) int {
	if len(args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: copier stat|get PATH | put DIR [--no-overwrite-dir-non-dir] [--owner USER] (run by the tent daemon)")
		return 2
	}
	if err := enterRoot(3); err != nil {
		return answer(reply{}, err)
	}
	op, path := args[0], args[1]
	switch op {
	case "stat", "get":
		st, resolved, err := statPath(path)
		if err != nil || op == "stat" {
			return answer(reply{Stat: st}, err)
		}
		if answer(reply{Stat: st}, nil) != 0 {
			return 1
		}
		if err := archive.WriteTree(os.Stdout, resolved, filepath.Base(absPath(path)), engineMounts(resolved)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return 0
	case "put":
		o := archive.ExtractOptions{}
		rest := args[2:]
		for len(rest) > 0 {
			switch rest[0] {
			case "--no-overwrite-dir-non-dir":
				o.NoOverwriteDirNonDir = true
			case "--owner":
				if len(rest) < 2 {
					return answer(reply{}, errors.New("--owner needs a user"))
				}
				u, err := userdb.ResolveUser("/", rest[1])
				if err != nil {
					return answer(reply{}, err)
				}
				o.Owner = &[2]int{int(u.UID), int(u.GID)}
				rest = rest[1:]
			default:
				return answer(reply{}, fmt.Errorf("unknown option %q", rest[0]))
			}
			rest = rest[1:]
		}
		return answer(reply{}, put(path, o))
	}
	return answer(reply{}, fmt.Errorf("unknown operation %q", op))
}

// engineMounts are the engine's pseudo file systems under dir (relative
// to it), which a copy lists but does not descend into: docker's copies
// see them as the empty directories of its init layer.
func engineMounts(dir string) map[string]bool {
	out := map[string]bool{}
	for _, m := range []string{"/proc", "/sys", "/dev"} {
		if rel, err := filepath.Rel(filepath.Clean(dir), m); err == nil && !strings.HasPrefix(rel, "..") {
			out[strings.TrimPrefix(rel, ".")] = true // "." is the tree's own entry, ""
		}
	}
	return out
}

// enterRoot makes the directory open as fd the process's root and working
// directory.
func enterRoot(fd int) error {
	if err := unix.Fchdir(fd); err != nil {
		return fmt.Errorf("enter the container's root: %w", err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("enter the container's root: %w", err)
	}
	unix.Close(fd)
	return unix.Chdir("/")
}

// answer writes the reply line; its result is Main's exit status.
func answer(r reply, err error) int {
	if err != nil {
		r = reply{Error: err.Error(), Class: errdefs.ClassOf(err)}
	}
	b, _ := json.Marshal(r)
	if _, werr := os.Stdout.Write(append(b, '\n')); werr != nil || err != nil {
		return 1
	}
	return 0
}

// absPath is path made absolute, a trailing "/" or "/." kept (they say
// "a directory" and "its content" to docker cp).
func absPath(path string) string {
	abs := filepath.Join("/", path)
	switch {
	case strings.HasSuffix(path, "/.") || path == ".":
		if abs != "/" {
			abs += "/."
		}
	case strings.HasSuffix(path, "/") && abs != "/":
		abs += "/"
	}
	return abs
}

// resolve is where path lives: its directory with every symlink followed
// (inside the root, which is "/" here), its last element as written.
func resolve(path string) (string, error) {
	dir, base := filepath.Split(absPath(path))
	rdir, err := securejoin.SecureJoin("/", dir)
	if err != nil {
		return "", err
	}
	return filepath.Join(rdir, base) + trailing(base, path), nil
}

// trailing keeps the "/" of a path that named a directory ("file/" must
// fail as not one).
func trailing(base, path string) string {
	if base == "" && path != "/" && strings.HasSuffix(path, "/") {
		return "/"
	}
	return ""
}

// statPath describes path as docker's archive endpoints do: the entry
// itself (a symlink is not followed), with the symlink's fully resolved
// target.
func statPath(path string) (*container.PathStat, string, error) {
	resolved, err := resolve(path)
	if err != nil {
		return nil, "", err
	}
	fi, err := os.Lstat(resolved)
	if err != nil {
		return nil, "", pathError(path, err)
	}
	st := &container.PathStat{Name: filepath.Base(absPath(path)), Size: fi.Size(), Mode: fi.Mode(), Mtime: fi.ModTime()}
	if fi.Mode()&fs.ModeSymlink != 0 {
		if st.LinkTarget, err = securejoin.SecureJoin("/", absPath(path)); err != nil {
			return nil, "", err
		}
	}
	return st, resolved, nil
}

// pathError classes a failed lookup of path.
func pathError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("Could not find the file %s in container: %w", path, errdefs.ErrNotFound)
	case errors.Is(err, syscall.ENOTDIR):
		return fmt.Errorf("%s: not a directory: %w", path, errdefs.ErrInvalidArgument)
	}
	return err
}

// put extracts stdin into the directory dir (every symlink of it
// followed, inside the root).
func put(dir string, o archive.ExtractOptions) error {
	resolved, err := securejoin.SecureJoin("/", dir)
	if err != nil {
		return err
	}
	fi, err := os.Stat(resolved)
	if err != nil {
		return pathError(dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("extraction point is not a directory: %w", errdefs.ErrInvalidArgument)
	}
	o.Under = resolved
	err = archive.Extract("/", os.Stdin, o)
	switch {
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("container rootfs is marked read-only: %w", errdefs.ErrForbidden)
	case errors.Is(err, archive.ErrBreakout), errors.Is(err, archive.ErrDirNonDir):
		return errdefs.WithClass(err, errdefs.ErrInvalidArgument.Error())
	}
	return err
}
