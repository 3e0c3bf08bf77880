package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/snapshot"
)

// saveArchive builds a docker-save archive of one image with one layer.
func saveArchive(t *testing.T, layer []byte, diffID digest.Digest, layerName string, tags []string) ([]byte, digest.Digest) {
	t.Helper()
	conf, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{diffID}},
	})
	id := digest.FromBytes(conf)
	manifest, _ := json.Marshal([]dockerManifest{{Config: id.Encoded() + ".json", RepoTags: tags, Layers: []string{layerName}}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct {
		name string
		data []byte
	}{{"abc/layer.tar", layer}, {"abc/VERSION", []byte("1.0")}, {id.Encoded() + ".json", conf}, {"manifest.json", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.data))})
		tw.Write(f.data)
	}
	tw.Close()
	return buf.Bytes(), id
}

func countLeft(t *testing.T, s *Store, root string) (images, snaps, blobs int) {
	imgs, _ := s.List()
	_ = s.snap.Walk(func(snapshot.Info) error { snaps++; return nil })
	entries, _ := os.ReadDir(filepath.Join(root, "content", "blobs", "sha256"))
	return len(imgs), snaps, len(entries)
}

func TestLoad(t *testing.T) {
	s, root := newStore(t)
	layer := rootfsTar(t, "loaded")
	archive, id := saveArchive(t, layer, digest.FromBytes(layer), "abc/layer.tar", []string{"loaded:v1"})
	imgs, err := s.Load(bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].ID != id {
		t.Fatalf("loaded %v, want image ID %s (the config digest)", imgs, id)
	}
	if got, err := s.Get("loaded:v1"); err != nil || got.ID != id {
		t.Fatalf("Get by tag: %v %v", got, err)
	}
	if _, err := s.RootFS(imgs[0]); err != nil {
		t.Fatal(err)
	}
	// Layer and config are kept; VERSION and manifest.json are not.
	if _, _, blobs := countLeft(t, s, root); blobs != 2 {
		t.Errorf("%d blobs kept, want 2", blobs)
	}
}

func TestLoadBadArchivesKeepNothing(t *testing.T) {
	layer := rootfsTar(t, "x")
	for name, archive := range map[string]func(t *testing.T) []byte{
		"layer not in archive": func(t *testing.T) []byte {
			a, _ := saveArchive(t, layer, digest.FromBytes(layer), "../../etc/passwd", []string{"bad:1"})
			return a
		},
		"wrong diffID": func(t *testing.T) []byte {
			a, _ := saveArchive(t, layer, digest.FromString("other"), "abc/layer.tar", []string{"bad:1"})
			return a
		},
		"not an archive": func(t *testing.T) []byte { return []byte("hello, I am not a tar file at all, not even close..") },
		"no manifest":    func(t *testing.T) []byte { return layer },
	} {
		t.Run(name, func(t *testing.T) {
			s, root := newStore(t)
			if _, err := s.Load(bytes.NewReader(archive(t))); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Load: %v, want an invalid-argument error", err)
			}
			if i, sn, b := countLeft(t, s, root); i+sn+b != 0 {
				t.Errorf("left %d images, %d snapshots, %d blobs", i, sn, b)
			}
		})
	}
}
