package archive

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// WriteDiff writes the changes held in an overlayfs upper directory as an
// image layer: the upper directory's entries in lexical order, a 0:0
// character device as a ".wh.<name>" whiteout and an opaque directory
// (trusted.overlay.opaque=y) followed by ".wh..wh..opq"; hard links
// inside the layer stay links; extended attributes other than overlay's
// own go along (security.capability, user.*). Paths of skip (relative,
// "run/secrets/x") are left out when they are empty files or directories
// holding nothing but other skipped paths: mount points made for a
// container, not by it (see RemoveLeftOut). It returns the layer's
// diffID, the digest of what was written.
func WriteDiff(w io.Writer, upper string, skip map[string]bool) (digest.Digest, error) {
	return writeLayer(w, &differ{upper: upper, skip: skip}, func(d *differ) error { return d.dir("") })
}

// writeLayer writes a layer as write has d write its entries, and
// returns its diffID.
func writeLayer(w io.Writer, d *differ, write func(d *differ) error) (digest.Digest, error) {
	h := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 256<<10)
	d.tw, d.links = tar.NewWriter(bw), map[inode]string{}
	if err := write(d); err != nil {
		return "", err
	}
	if err := d.tw.Close(); err != nil {
		return "", err
	}
	if err := bw.Flush(); err != nil {
		return "", err
	}
	return digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)), nil
}

type inode struct{ dev, ino uint64 }

type differ struct {
	upper string
	tw    *tar.Writer
	// top, for WriteTree, names the tree's own entry; the others are
	// top/rel. A layer's (WriteDiff) are rel, whiteouts converted.
	top   string
	plain bool
	prune map[string]bool
	// links are the layer's paths of inodes seen with more than one link.
	links map[inode]string
	skip  map[string]bool
	// flat: an entry is written alone, not with what its directory holds
	// (WriteTreeDiff lists every path it writes).
	flat bool
	buf  []byte // file content goes through it
}

// RemoveLeftOut removes from upper what WriteDiff leaves out of its
// layer for skip: an upper directory that becomes a layer's snapshot must
// hold what the layer holds.
func RemoveLeftOut(upper string, skip map[string]bool) error {
	paths := make([]string, 0, len(skip))
	for p := range skip {
		paths = append(paths, p)
	}
	slices.Sort(paths) // parents first: a parent left out takes its children along
	for _, p := range paths {
		if leftOut(upper, p, skip) {
			if err := os.RemoveAll(filepath.Join(upper, p)); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *differ) skipped(rel string) bool { return leftOut(d.upper, rel, d.skip) }

// leftOut tells whether rel is a mount point to leave out (see WriteDiff).
func leftOut(upper, rel string, skip map[string]bool) bool {
	if !skip[rel] {
		return false
	}
	path := filepath.Join(upper, rel)
	fi, err := os.Lstat(path)
	if err != nil {
		return false
	}
	if fi.Mode().IsRegular() {
		return fi.Size() == 0
	}
	if !fi.IsDir() {
		return false
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return false
	}
	for _, e := range entries {
		if !leftOut(upper, filepath.Join(rel, e.Name()), skip) {
			return false
		}
	}
	return true
}

// dir writes the entries of directory rel (relative to upper), sorted.
func (d *differ) dir(rel string) error {
	entries, err := os.ReadDir(filepath.Join(d.upper, rel))
	if err != nil {
		return err
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	for _, name := range names {
		if err := d.entry(filepath.Join(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

// WriteTree writes the file or directory at path as a plain tar: its own
// entry named top, those below it top/rel (what docker's archive endpoint
// sends for `docker cp`), modes with their file type bits as docker's.
// Nothing is converted (no whiteouts), hard links inside the tree stay
// links, sockets are left out; symlinks are written as links, never
// followed. The directories of prune (relative to path) are written
// without what they hold.
func WriteTree(w io.Writer, path, top string, prune map[string]bool) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	d := &differ{upper: path, tw: tar.NewWriter(bw), links: map[inode]string{}, top: top, plain: true, prune: prune}
	if err := d.entry(""); err != nil {
		return err
	}
	if err := d.tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// tarName is the name of rel's entry.
func (d *differ) tarName(rel string) string {
	switch {
	case !d.plain:
		return rel
	case rel == "":
		return d.top
	case strings.HasSuffix(d.top, "/"):
		return d.top + rel
	}
	return d.top + "/" + rel
}

func (d *differ) entry(rel string) error {
	if d.skipped(rel) {
		return nil
	}
	path := filepath.Join(d.upper, rel)
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return err
	}
	mode := st.Mode & unix.S_IFMT
	if mode == unix.S_IFCHR && st.Rdev == 0 && !d.plain {
		return d.marker(filepath.Join(filepath.Dir(rel), whPrefix+filepath.Base(rel)))
	}
	name := d.tarName(rel)
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: time.Unix(st.Mtim.Sec, st.Mtim.Nsec).UTC(),
		Format:  tar.FormatPAX,
	}
	if err := d.xattrs(path, hdr); err != nil {
		return err
	}
	opaque := false
	switch mode {
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, strings.TrimSuffix(name, "/")+"/"
		if v, err := getxattr(path, "trusted.overlay.opaque"); err == nil && string(v) == "y" && !d.plain {
			opaque = true
		}
	case unix.S_IFREG:
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
		if st.Nlink > 1 {
			key := inode{st.Dev, st.Ino}
			if first, ok := d.links[key]; ok {
				hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, first, 0
			} else {
				d.links[key] = name
			}
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(path)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if mode == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	default:
		return nil // sockets have no place in a layer
	}
	if d.plain {
		hdr.Mode |= int64(mode) // the type bits, as Go's and docker's archivers write them
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		if d.buf == nil {
			d.buf = make([]byte, 1<<20)
		}
		// Not f.WriteTo, which has nothing to splice into and copies
		// through a new 32 KiB buffer each time.
		n, err := io.CopyBuffer(d.tw, struct{ io.Reader }{f}, d.buf)
		f.Close()
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("%s changed while it was written to the layer", rel)
		}
	}
	if mode != unix.S_IFDIR || d.prune[rel] || d.flat {
		return nil
	}
	if opaque {
		if err := d.marker(filepath.Join(rel, whOpaque)); err != nil {
			return err
		}
	}
	return d.dir(rel)
}

// marker writes an empty whiteout file.
func (d *differ) marker(name string) error {
	return d.tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o600, Format: tar.FormatPAX,
		ModTime: time.Unix(0, 0).UTC()})
}

// xattrs copies the path's extended attributes into the header, but
// overlayfs' own (trusted.overlay.*), which describe the upper directory.
func (d *differ) xattrs(path string, hdr *tar.Header) error {
	size, err := unix.Llistxattr(path, nil)
	if err != nil || size == 0 {
		return nil // none, or a file system without them
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(path, buf)
	if err != nil {
		return nil
	}
	for _, name := range strings.Split(strings.TrimRight(string(buf[:size]), "\x00"), "\x00") {
		if name == "" || strings.HasPrefix(name, "trusted.overlay.") {
			continue
		}
		v, err := getxattr(path, name)
		if err != nil {
			continue
		}
		if hdr.PAXRecords == nil {
			hdr.PAXRecords = map[string]string{}
		}
		hdr.PAXRecords["SCHILY.xattr."+name] = string(v)
	}
	return nil
}

func getxattr(path, name string) ([]byte, error) {
	buf := make([]byte, 256)
	for {
		n, err := unix.Lgetxattr(path, name, buf)
		if err == unix.ERANGE {
			buf = make([]byte, len(buf)*4)
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// Change is one entry of docker diff: a path of the container and its
// kind (ChangeModify, ChangeAdd, ChangeDelete, the API's numbers).
type Change struct {
	Path string
	Kind int
}

// The kinds of a Change.
const (
	ChangeModify = 0
	ChangeAdd    = 1
	ChangeDelete = 2
)

// Changes lists what an overlay upper directory changes over lower (the
// content below it, mounted): whiteouts are deletions, paths lower has
// are modifications, the others additions; skip as in WriteDiff. Paths
// are absolute, in lexical order.
func Changes(upper, lower string, skip map[string]bool) ([]Change, error) {
	var out []Change
	copiedUp := map[int]bool{} // directories of lower's metadata, by index in out
	err := filepath.WalkDir(upper, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(upper, p)
		if rel == "." {
			return nil
		}
		if leftOut(upper, rel, skip) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		if st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0 {
			out = append(out, Change{Path: "/" + rel, Kind: ChangeDelete})
			return nil
		}
		kind := ChangeAdd
		// The lower path is resolved inside lower: an image's symlink
		// must not lead the lookup to the host's files.
		if old, err := inTree(lower, rel); err == nil {
			var was unix.Stat_t
			if err := unix.Lstat(old, &was); err == nil {
				kind = ChangeModify
				if st.Mode&unix.S_IFMT == unix.S_IFDIR && sameEntry(&was, &st, old, p) && onlyLeftOut(upper, rel, skip) {
					copiedUp[len(out)] = true
				}
			}
		}
		out = append(out, Change{Path: "/" + rel, Kind: kind})
		return nil
	})
	if err != nil {
		return nil, err
	}
	// A directory copied up only to hold what skip leaves out (the
	// engine's mount points: /etc for /etc/hosts) is no change of the
	// container's, as with docker's init layer.
	var kept []Change
	for i, ch := range out {
		if !copiedUp[i] {
			kept = append(kept, ch)
		}
	}
	return kept, nil
}

// onlyLeftOut tells whether directory rel of upper holds something, all
// of it left out (skip), and is not opaque (an opaque one replaced
// lower's, whose content is gone).
func onlyLeftOut(upper, rel string, skip map[string]bool) bool {
	if v, err := getxattr(filepath.Join(upper, rel), "trusted.overlay.opaque"); err == nil && string(v) == "y" {
		return false
	}
	entries, err := os.ReadDir(filepath.Join(upper, rel))
	if err != nil || len(entries) == 0 {
		return false
	}
	for _, e := range entries {
		if !leftOut(upper, filepath.Join(rel, e.Name()), skip) {
			return false
		}
	}
	return true
}
