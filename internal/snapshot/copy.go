package snapshot

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// CopyTree copies the tree at src into the existing directory dst,
// keeping owners, modes, times, extended attributes, device nodes and
// hard links.
func CopyTree(src, dst string) error {
	links := map[uint64]string{} // inode -> first copy, for hard links
	var dirs []string
	err := filepath.Walk(src, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		st := &unix.Stat_t{}
		if err := unix.Lstat(p, st); err != nil {
			return err
		}
		switch mode := fi.Mode(); {
		case rel == ".":
		case mode.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
		case mode.IsRegular():
			if st.Nlink > 1 {
				if first, ok := links[st.Ino]; ok {
					return os.Link(first, target)
				}
				links[st.Ino] = target
			}
			if err := copyFile(p, target); err != nil {
				return err
			}
		case mode&os.ModeSymlink != 0:
			link, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		case mode&(os.ModeDevice|os.ModeNamedPipe|os.ModeSocket) != 0:
			if err := unix.Mknod(target, st.Mode, int(st.Rdev)); err != nil {
				return err
			}
		default:
			return fmt.Errorf("copy %s: unsupported file type %v", p, mode)
		}
		if err := copyAttrs(p, target, st); err != nil {
			return err
		}
		if fi.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Directory times last: copying into a directory changes them.
	for i := len(dirs) - 1; i >= 0; i-- {
		rel, _ := filepath.Rel(src, dirs[i])
		var st unix.Stat_t
		if err := unix.Lstat(dirs[i], &st); err != nil {
			return err
		}
		if err := setTimes(filepath.Join(dst, rel), &st); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in) // copy_file_range where the kernel can
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

func copyAttrs(src, dst string, st *unix.Stat_t) error {
	if err := os.Lchown(dst, int(st.Uid), int(st.Gid)); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		if err := unix.Chmod(dst, st.Mode&0o7777); err != nil {
			return err
		}
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return nil
	}
	return setTimes(dst, st)
}

func setTimes(p string, st *unix.Stat_t) error {
	ts := []unix.Timespec{st.Atim, st.Mtim}
	return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
}

func copyXattrs(src, dst string) error {
	size, err := unix.Llistxattr(src, nil)
	if err != nil || size == 0 {
		return nil // none, or a file system without them
	}
	buf := make([]byte, size)
	if size, err = unix.Llistxattr(src, buf); err != nil {
		return nil
	}
	start := 0
	for i := 0; i < size; i++ {
		if buf[i] != 0 {
			continue
		}
		name := string(buf[start:i])
		start = i + 1
		vsize, err := unix.Lgetxattr(src, name, nil)
		if err != nil {
			continue
		}
		val := make([]byte, vsize)
		if vsize, err = unix.Lgetxattr(src, name, val); err != nil {
			continue
		}
		if err := unix.Lsetxattr(dst, name, val[:vsize], 0); err != nil && err != unix.ENOTSUP {
			return fmt.Errorf("xattr %s on %s: %w", name, dst, err)
		}
	}
	return nil
}
