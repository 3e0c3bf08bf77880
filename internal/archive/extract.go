package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"strings"
)

// ErrBreakout is an entry of an extracted archive that would land outside
// the directory it is extracted into.
var ErrBreakout = errors.New("archive entry leaves the extraction directory")

// ErrDirNonDir is an entry that would replace a directory with a
// non-directory, or the reverse, where ExtractOptions forbid it.
var ErrDirNonDir = errors.New("cannot replace a directory with a non-directory or the reverse")

// ExtractOptions shape an extraction of a user's archive (docker cp, PUT
// /containers/{id}/archive), as opposed to an image layer's.
type ExtractOptions struct {
	// Under is the directory, relative to the root, the entries go into.
	// An entry whose name, hard link or relative symlink target leaves it
	// is an error (ErrBreakout) where a layer's would be cleaned.
	Under string
	// NoOverwriteDirNonDir keeps a directory from being replaced by a
	// non-directory and the reverse (ErrDirNonDir).
	NoOverwriteDirNonDir bool
	// Rename {from, to}: an entry named from, or below it, is extracted
	// as to (a copy that takes the destination's name).
	Rename [2]string
	// Owner, when set, owns every entry (uid, gid) instead of the
	// archive's owners.
	Owner *[2]int
}

// Extract unpacks a plain (possibly compressed) tar r under o.Under of
// root; ".wh." entries are files like any other. Paths resolve inside
// root, so root should be what a container sees as "/" (see
// internal/copier, which runs this chrooted into a container).
func Extract(root string, r io.Reader, o ExtractOptions) error {
	a := &applier{root: root, wh: Plain, x: &o, written: map[string]bool{}}
	_, err := a.apply(r)
	return err
}

// renamed is name after Rename.
func (x *ExtractOptions) renamed(name string) string {
	if x == nil || x.Rename[0] == "" {
		return name
	}
	rest, ok := strings.CutPrefix(name, x.Rename[0])
	if !ok || rest != "" && rest[0] != '/' {
		return name
	}
	return x.Rename[1] + rest
}

// mayReplace checks the replacement of fi by hdr's entry.
func (x *ExtractOptions) mayReplace(fi fs.FileInfo, hdr *tar.Header) error {
	if x == nil || !x.NoOverwriteDirNonDir {
		return nil
	}
	if isDir := hdr.Typeflag == tar.TypeDir; fi.IsDir() != isDir {
		if isDir {
			return fmt.Errorf("cannot overwrite non-directory %q with directory %q: %w", fi.Name(), hdr.Name, ErrDirNonDir)
		}
		return fmt.Errorf("cannot overwrite directory %q with non-directory %q: %w", fi.Name(), hdr.Name, ErrDirNonDir)
	}
	return nil
}

// checkSymlink refuses a relative symlink at rel whose target climbs out
// of the extraction directory, as docker's extraction does.
func (x *ExtractOptions) checkSymlink(rel, target string) error {
	if x == nil || filepath.IsAbs(target) {
		return nil
	}
	base := filepath.Join("/", x.Under)
	to := filepath.Join("/", filepath.Dir(rel), target)
	if base != "/" && to != base && !strings.HasPrefix(to, base+"/") {
		return fmt.Errorf("invalid symlink %q -> %q: %w", "/"+rel, target, ErrBreakout)
	}
	return nil
}
