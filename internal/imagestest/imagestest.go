// Package imagestest makes, for tests, an image store with what it
// stands on (a bbolt database, a content store, a snapshotter) in a
// temporary directory that the test removes.
package imagestest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/tent-project/tent/internal/content"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/snapshot"
	bolt "go.etcd.io/bbolt"
)

// Snapshotters a test may ask for.
const (
	Native  = "native"
	Overlay = "overlay" // skips the test where overlayfs cannot be used
	Any     = ""        // overlay where it can be used, else native
)

// Stores are an image store and what it stands on.
type Stores struct {
	Images  *images.Store
	Content *content.Store
	Snap    snapshot.Snapshotter
}

// New makes the stores with the snapshotter kind.
func New(t testing.TB, kind string) Stores {
	t.Helper()
	root := t.TempDir()
	db, err := bolt.Open(filepath.Join(root, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cs, err := content.New(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	snapRoot := filepath.Join(root, "snapshots")
	if err := os.MkdirAll(snapRoot, 0o700); err != nil {
		t.Fatal(err)
	}
	overlay := kind != Native && snapshot.OverlaySupported(snapRoot)
	if kind == Overlay && !overlay {
		t.Skip("overlayfs is not usable here")
	}
	newSn := snapshot.NewNative
	if overlay {
		newSn = snapshot.NewOverlay
	}
	sn, err := newSn(snapRoot)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sn.Close() })
	st, err := images.New(db, cs, sn)
	if err != nil {
		t.Fatal(err)
	}
	return Stores{Images: st, Content: cs, Snap: sn}
}
