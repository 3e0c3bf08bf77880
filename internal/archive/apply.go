package archive

import (
	"archive/tar"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Whiteouts says what to do with the deletion markers of a layer.
type Whiteouts int

const (
	// Delete carries whiteouts out: the target holds the layers below, and
	// whited-out paths are removed from it.
	Delete Whiteouts = iota
	// Overlay turns whiteouts into overlayfs markers (a 0:0 character
	// device, or the trusted.overlay.opaque xattr): the target is an
	// overlay upper directory.
	Overlay
	// Plain keeps ".wh." entries as the files they are: the archive is
	// not a layer (a build context, an ADDed tarball).
	Plain
)

const (
	whPrefix = ".wh."
	whOpaque = ".wh..wh..opq"
)

// Result describes an applied layer.
type Result struct {
	// DiffID is the digest of the uncompressed tar, the layer's identity
	// in an image config.
	DiffID digest.Digest
	// Size is the number of uncompressed bytes read.
	Size int64
}

// Apply unpacks the layer r into dir. It fails on a malformed or truncated
// stream; the caller then discards dir, which may hold part of the layer.
func Apply(dir string, r io.Reader, wh Whiteouts) (Result, error) {
	return (&applier{root: dir, wh: wh, written: map[string]bool{}}).apply(r)
}

func (a *applier) apply(r io.Reader) (Result, error) {
	plain, err := Decompress(r)
	if err != nil {
		return Result{}, err
	}
	defer plain.Close()
	// A layer's digest is its identity; an extraction's (a.x) is unused,
	// and hashing is most of its CPU time.
	var h hash.Hash
	counter := &countingReader{r: plain}
	if a.x == nil {
		h = sha256.New()
		counter.r = io.TeeReader(plain, h)
	}
	tr := tar.NewReader(counter)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Result{}, fmt.Errorf("layer: %w", err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return Result{}, fmt.Errorf("layer entry %q: %w", hdr.Name, err)
		}
	}
	// Whatever trails the end-of-archive marker counts towards the digest.
	if _, err := io.Copy(io.Discard, counter); err != nil {
		return Result{}, fmt.Errorf("layer: %w", err)
	}
	if err := a.finish(); err != nil {
		return Result{}, err
	}
	res := Result{Size: counter.n}
	if h != nil {
		res.DiffID = digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	}
	return res, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

type applier struct {
	root    string
	wh      Whiteouts
	x       *ExtractOptions // nil for a layer
	written map[string]bool // paths (relative) this layer wrote
	dirs    []dirTimes      // directory times, set once their content is written
	// lastDir (relative) was resolved to lastParent and made: entries
	// come directory by directory, and one in lastDir cannot change it
	// or its ancestors, so the next one there needs neither again.
	lastDir, lastParent string
	buf                 []byte // file content goes through it
}

type dirTimes struct {
	path         string
	atime, mtime time.Time
}

// clean turns an entry name into a path relative to the root, with no ".."
// and no leading "/": "../../etc/x" and "/etc/x" both become "etc/x".
func clean(name string) string {
	return strings.TrimPrefix(filepath.Clean("/"+name), "/")
}

// resolve returns where rel lives on disk: its parent resolved inside the
// root (following symlinks only within it) and made, its last element as
// is.
func (a *applier) resolve(rel string) (string, error) {
	parent, err := a.parent(filepath.Dir(rel))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, filepath.Base(rel)), nil
}

// parent resolves the directory dirRel inside the root and makes it.
func (a *applier) parent(dirRel string) (string, error) {
	if a.lastParent != "" && dirRel == a.lastDir {
		return a.lastParent, nil
	}
	dir, err := securejoin.SecureJoin(a.root, dirRel)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	a.lastDir, a.lastParent = dirRel, dir
	return dir, nil
}

// name is where an entry name lives, relative to the root: for a layer
// cleaned of any "..", for an extraction under its directory (and an
// error where ".." would leave it).
func (a *applier) name(name string) (string, error) {
	if a.x == nil {
		return clean(name), nil
	}
	rel := filepath.Clean(a.x.renamed(strings.TrimPrefix(name, "/")))
	if rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%q is outside of the extraction directory: %w", name, ErrBreakout)
	}
	return clean(filepath.Join(a.x.Under, rel)), nil
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := a.name(hdr.Name)
	if err != nil {
		return err
	}
	if rel == "" || a.x != nil && rel == clean(a.x.Under) {
		return nil // the root itself, or the directory extracted into
	}
	base := filepath.Base(rel)
	if strings.HasPrefix(base, whPrefix) && a.wh != Plain {
		return a.whiteout(rel, base)
	}
	path, err := a.resolve(rel)
	if err != nil {
		return err
	}
	// Whatever is there (from a lower layer) is replaced, except that a
	// directory stays a directory when the entry is one.
	if fi, err := os.Lstat(path); err == nil {
		if err := a.x.mayReplace(fi, hdr); err != nil {
			return err
		}
		if !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
		}
	}
	mode := uint32(hdr.Mode & 0o7777)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(path, 0o755); err != nil && !os.IsExist(err) {
			return err
		}
	case tar.TypeReg: // the reader reports old-style TypeRegA entries as TypeReg
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return err
		}
		if a.buf == nil {
			a.buf = make([]byte, 1<<20)
		}
		err = copyFull(f, r, a.buf)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	case tar.TypeSymlink:
		// The link is stored as written: it is only dangerous if followed
		// while unpacking, which resolve never does outside the root.
		if err := a.x.checkSymlink(rel, hdr.Linkname); err != nil {
			return err
		}
		if err := os.Symlink(hdr.Linkname, path); err != nil {
			return err
		}
	case tar.TypeLink:
		linkRel, err := a.name(hdr.Linkname)
		if err != nil {
			return err
		}
		target, err := securejoin.SecureJoin(a.root, linkRel)
		if err != nil {
			return err
		}
		if fi, err := os.Lstat(target); err != nil || fi.IsDir() {
			return fmt.Errorf("hard link to %q: no such file in the layer's tree", hdr.Linkname)
		}
		if err := os.Link(target, path); err != nil {
			return err
		}
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := uint32(unix.S_IFIFO)
		switch hdr.Typeflag {
		case tar.TypeChar:
			typ = unix.S_IFCHR
		case tar.TypeBlock:
			typ = unix.S_IFBLK
		}
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(path, typ|mode, int(dev)); err != nil {
			return err
		}
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	a.written[rel] = true
	if hdr.Typeflag == tar.TypeLink {
		return nil // same inode as its target, which has its attributes
	}
	return a.attributes(path, hdr, mode)
}

// copyFull copies r to w through buf, a write of whole buffers (not
// f.ReadFrom, which finds nothing to splice from a tar and copies
// through a new 32 KiB buffer, one write per read of the stream).
func copyFull(w io.Writer, r io.Reader, buf []byte) error {
	for {
		n, err := io.ReadFull(r, buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return nil
		default:
			return err
		}
	}
}

// attributes sets owner, mode, extended attributes and times.
func (a *applier) attributes(path string, hdr *tar.Header, mode uint32) error {
	uid, gid := hdr.Uid, hdr.Gid
	if a.x != nil && a.x.Owner != nil {
		uid, gid = a.x.Owner[0], a.x.Owner[1]
	}
	if err := os.Lchown(path, uid, gid); err != nil {
		return err
	}
	for k, v := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if err := unix.Lsetxattr(path, name, []byte(v), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
				return fmt.Errorf("xattr %s: %w", name, err)
			}
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After chown, which clears set-id bits.
		if err := unix.Chmod(path, mode); err != nil {
			return err
		}
	}
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		a.dirs = append(a.dirs, dirTimes{path, atime, hdr.ModTime})
		return nil
	}
	return lutimes(path, atime, hdr.ModTime)
}

func lutimes(path string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	return unix.UtimesNanoAt(unix.AT_FDCWD, path, ts, unix.AT_SYMLINK_NOFOLLOW)
}

// whiteout handles ".wh.<name>" (name deleted) and ".wh..wh..opq" (the
// directory's lower content hidden).
func (a *applier) whiteout(rel, base string) error {
	dirRel := filepath.Dir(rel)
	dir, err := a.parent(dirRel)
	if err != nil {
		return err
	}
	if base == whOpaque {
		if a.wh == Overlay {
			return unix.Setxattr(dir, "trusted.overlay.opaque", []byte("y"), 0)
		}
		entries, err := os.ReadDir(dir)
		if err != nil {
			return err
		}
		for _, e := range entries {
			child := filepath.Join(dirRel, e.Name())
			if dirRel == "." {
				child = e.Name()
			}
			if !a.written[child] {
				if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
					return err
				}
			}
		}
		return nil
	}
	name := strings.TrimPrefix(base, whPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("invalid whiteout %q", base)
	}
	target := filepath.Join(dir, name)
	if a.wh == Overlay {
		_ = os.RemoveAll(target)
		return unix.Mknod(target, unix.S_IFCHR, 0)
	}
	return os.RemoveAll(target)
}

// finish sets directory times last, deepest first, as writing into a
// directory changes them.
func (a *applier) finish() error {
	for i := len(a.dirs) - 1; i >= 0; i-- {
		d := a.dirs[i]
		if err := lutimes(d.path, d.atime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}
