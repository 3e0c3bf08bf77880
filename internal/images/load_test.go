package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
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
	if _, err := s.RootFS(imgs[0].Image); err != nil {
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

// ociArchive builds a bare OCI image layout (no manifest.json) of one
// image with one gzip layer, named by index.json's annotations; tamper
// may change the files before they are written.
func ociArchive(t *testing.T, layer []byte, annotations map[string]string, tamper func(files map[string][]byte, manifest digest.Digest)) ([]byte, digest.Digest) {
	t.Helper()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layer)
	zw.Close()
	conf, _ := json.Marshal(ocispec.Image{
		Platform: ocispec.Platform{Architecture: "amd64", OS: "linux"},
		RootFS:   ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(layer)}},
	})
	man, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: digest.FromBytes(conf), Size: int64(len(conf))},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(gz.Bytes()), Size: int64(gz.Len())}}})
	md := digest.FromBytes(man)
	index, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex,
		Manifests: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(man)), Annotations: annotations}}})
	blob := func(b []byte) string { return "blobs/sha256/" + digest.FromBytes(b).Encoded() }
	files := map[string][]byte{"oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`), "index.json": index,
		blob(conf): conf, blob(man): man, blob(gz.Bytes()): gz.Bytes()}
	if tamper != nil {
		tamper(files, md)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range files {
		tw.WriteHeader(&tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(data))})
		tw.Write(data)
	}
	tw.Close()
	return buf.Bytes(), digest.FromBytes(conf)
}

func TestLoadOCILayout(t *testing.T) {
	layer := rootfsTar(t, "oci")
	for _, c := range []struct {
		annotations map[string]string
		tag         string
	}{
		{map[string]string{"io.containerd.image.name": "docker.io/library/named:1", ocispec.AnnotationRefName: "1"}, "named:1"},
		{map[string]string{ocispec.AnnotationRefName: "example.com/app:v2"}, "example.com/app:v2"},
		{map[string]string{ocispec.AnnotationRefName: "latest"}, ""}, // a bare tag names nothing
	} {
		s, _ := newStore(t)
		archive, id := ociArchive(t, layer, c.annotations, nil)
		imgs, err := s.Load(bytes.NewReader(archive))
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 1 || imgs[0].ID != id {
			t.Fatalf("loaded %v, want image %s", imgs, id)
		}
		if c.tag == "" {
			if len(imgs[0].Tags) != 0 {
				t.Errorf("%v: tagged %v, want untagged", c.annotations, imgs[0].Tags)
			}
		} else if got, err := s.Get(c.tag); err != nil || got.ID != id {
			t.Errorf("%v: Get(%s): %v %v", c.annotations, c.tag, got, err)
		}
		if _, err := s.RootFS(imgs[0].Image); err != nil {
			t.Fatal(err)
		}
	}
}

func TestLoadOCILayoutTamperedKeepsNothing(t *testing.T) {
	layer := rootfsTar(t, "oci")
	for name, tamper := range map[string]func(map[string][]byte, digest.Digest){
		"manifest blob does not match its digest": func(f map[string][]byte, md digest.Digest) {
			f["blobs/sha256/"+md.Encoded()] = []byte(`{"schemaVersion":2}`)
		},
		"manifest missing": func(f map[string][]byte, md digest.Digest) { delete(f, "blobs/sha256/"+md.Encoded()) },
		"no index.json":    func(f map[string][]byte, _ digest.Digest) { delete(f, "index.json") },
		"index.json names a path": func(f map[string][]byte, _ digest.Digest) {
			f["index.json"] = []byte(`{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:../../../etc/passwd","size":1}]}`)
		},
	} {
		t.Run(name, func(t *testing.T) {
			s, root := newStore(t)
			archive, _ := ociArchive(t, layer, nil, tamper)
			if _, err := s.Load(bytes.NewReader(archive)); !errdefs.IsInvalidArgument(err) {
				t.Fatalf("Load: %v, want an invalid-argument error", err)
			}
			if i, sn, b := countLeft(t, s, root); i+sn+b != 0 {
				t.Errorf("left %d images, %d snapshots, %d blobs", i, sn, b)
			}
		})
	}
}
