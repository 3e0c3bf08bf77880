package snapshot

import (
	"fmt"
	"io"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
)

// NewNative returns a snapshotter that copies: each snapshot is a full
// tree, made from a copy of its parent. It works on any file system and is
// the fallback where overlayfs is not available.
func NewNative(root string) (Snapshotter, error) {
	return open(root, nativeBackend{})
}

type nativeBackend struct{}

func (nativeBackend) create(dir string, parents []string) error {
	if len(parents) == 0 {
		return nil
	}
	// The nearest parent is a full tree already.
	return CopyTree(parents[0], filepath.Join(dir, "fs"))
}

func (nativeBackend) whiteouts() archive.Whiteouts { return archive.Delete }

// A full copy has no record of what changed: diffs (builds, commits)
// need overlayfs.
func (nativeBackend) diff(string, io.Writer, DiffOpts) (digest.Digest, error) {
	return "", errNoDiff
}

func (nativeBackend) changes(string, string, map[string]bool) ([]archive.Change, error) {
	return nil, errNoDiff
}

var errNoDiff = fmt.Errorf("the changes of a container need the overlay snapshotter (this host has no overlayfs): %w", errdefs.ErrNotImplemented)

func (nativeBackend) merged(dir string, _ []string) []Mount {
	return []Mount{{Type: "bind", Source: filepath.Join(dir, "fs"), Options: []string{"ro", "rbind"}}}
}

func (nativeBackend) mounts(dir string, _ []string, readonly bool) []Mount {
	opt := "rw"
	if readonly {
		opt = "ro"
	}
	return []Mount{{Type: "bind", Source: filepath.Join(dir, "fs"), Options: []string{opt, "rbind"}}}
}
