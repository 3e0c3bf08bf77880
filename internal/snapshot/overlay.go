package snapshot

import (
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/archive"
	"golang.org/x/sys/unix"
)

// NewOverlay returns a snapshotter whose layers are overlayfs lower
// directories: nothing is copied, and every image and container sharing a
// layer shares it on disk.
func NewOverlay(root string) (Snapshotter, error) {
	return open(root, overlayBackend{})
}

type overlayBackend struct{}

func (overlayBackend) create(dir string, parents []string) error {
	return os.Mkdir(filepath.Join(dir, "work"), 0o700)
}

func (overlayBackend) whiteouts() archive.Whiteouts { return archive.Overlay }

// The upper directory holds exactly the snapshot's changes.
func (overlayBackend) diff(dir string, w io.Writer, o DiffOpts) (digest.Digest, error) {
	upper := filepath.Join(dir, "fs")
	if o.Prune {
		if err := archive.RemoveLeftOut(upper, o.Skip); err != nil {
			return "", err
		}
	}
	return archive.WriteDiff(w, upper, o.Skip)
}

func (overlayBackend) changes(dir, lower string, skip map[string]bool) ([]archive.Change, error) {
	return archive.Changes(filepath.Join(dir, "fs"), lower, skip)
}

// The upper directory as the top lower one: a read-only overlay, which
// may share its directories with the snapshot's own mount.
func (overlayBackend) merged(dir string, parents []string) []Mount {
	layers := append([]string{filepath.Join(dir, "fs")}, parents...)
	if len(layers) == 1 {
		return []Mount{{Type: "bind", Source: layers[0], Options: []string{"ro", "rbind"}}}
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(layers, ":")}}}
}

func (overlayBackend) mounts(dir string, parents []string, readonly bool) []Mount {
	fs := filepath.Join(dir, "fs")
	switch {
	case len(parents) == 0:
		opt := "rw"
		if readonly {
			opt = "ro"
		}
		return []Mount{{Type: "bind", Source: fs, Options: []string{opt, "rbind"}}}
	case readonly && len(parents) == 1:
		return []Mount{{Type: "bind", Source: parents[0], Options: []string{"ro", "rbind"}}}
	case readonly:
		return []Mount{{Type: "overlay", Source: "overlay", Options: []string{"lowerdir=" + strings.Join(parents, ":")}}}
	}
	return []Mount{{Type: "overlay", Source: "overlay", Options: []string{
		"index=off", "lowerdir=" + strings.Join(parents, ":"),
		"upperdir=" + fs, "workdir=" + filepath.Join(dir, "work"),
	}}}
}

// OverlaySupported reports whether dir's file system can hold overlay
// upper and work directories and the kernel has overlayfs.
func OverlaySupported(dir string) bool {
	base, err := os.MkdirTemp(dir, "overlay-check-")
	if err != nil {
		return false
	}
	defer os.RemoveAll(base)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(base, d), 0o700); err != nil {
			return false
		}
	}
	opts := "lowerdir=" + filepath.Join(base, "lower") + ",upperdir=" + filepath.Join(base, "upper") + ",workdir=" + filepath.Join(base, "work")
	merged := filepath.Join(base, "merged")
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		return false
	}
	_ = unix.Unmount(merged, 0)
	return true
}
