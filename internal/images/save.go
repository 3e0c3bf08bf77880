package images

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/opencontainers/go-digest"
	specsgo "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Save writes the named images (names or IDs) as one archive in the format
// docker 25+ writes: an OCI image layout (oci-layout, index.json,
// blobs/sha256/...) that also carries docker's manifest.json, so that both
// `docker load` and OCI tools (skopeo, umoci) read it.
func (s *Store) Save(w io.Writer, refs []string) error {
	tw := tar.NewWriter(w)
	written := map[digest.Digest]bool{}
	var index ocispec.Index
	index.SchemaVersion, index.MediaType = 2, ocispec.MediaTypeImageIndex
	var manifest []dockerManifest
	for _, ref := range refs {
		img, err := s.Get(ref)
		if err != nil {
			return err
		}
		cfgSize, err := s.cs.Size(img.ID)
		if err != nil {
			return err
		}
		m := ocispec.Manifest{
			Versioned: specsgo.Versioned{SchemaVersion: 2},
			MediaType: ocispec.MediaTypeImageManifest,
			Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: img.ID, Size: cfgSize},
		}
		dm := dockerManifest{Config: blobPath(img.ID)}
		for _, l := range img.Layers {
			size, err := s.cs.Size(l)
			if err != nil {
				return err
			}
			mt, err := s.layerMediaType(l)
			if err != nil {
				return err
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: l, Size: size})
			dm.Layers = append(dm.Layers, blobPath(l))
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return err
		}
		md := digest.FromBytes(raw)
		for _, blob := range append([]digest.Digest{img.ID}, img.Layers...) {
			if !written[blob] {
				if err := s.writeBlob(tw, blob); err != nil {
					return err
				}
				written[blob] = true
			}
		}
		if !written[md] {
			if err := writeFile(tw, blobPath(md), raw); err != nil {
				return err
			}
			written[md] = true
		}
		desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(raw))}
		// Name it as asked when ref is a name of this image; by all its
		// names when saved by ID.
		names := img.Names
		if full, err := Normalize(ref); err == nil && contains(img.Names, full) {
			names = []string{full}
		}
		if len(names) == 0 {
			index.Manifests = append(index.Manifests, desc)
		}
		for _, n := range names {
			d := desc
			d.Annotations = map[string]string{
				"io.containerd.image.name": n,
				ocispec.AnnotationRefName:  tagOf(n),
			}
			index.Manifests = append(index.Manifests, d)
			dm.RepoTags = append(dm.RepoTags, FamiliarName(n))
		}
		manifest = append(manifest, dm)
	}
	layout, _ := json.Marshal(ocispec.ImageLayout{Version: ocispec.ImageLayoutVersion})
	idx, _ := json.Marshal(index)
	man, _ := json.Marshal(manifest)
	for _, f := range []struct {
		name string
		data []byte
	}{{ocispec.ImageLayoutFile, layout}, {"index.json", idx}, {"manifest.json", man}} {
		if err := writeFile(tw, f.name, f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}

// tagOf returns the tag of a full reference ("latest" for name:latest).
func tagOf(full string) string {
	for i := len(full) - 1; i >= 0 && full[i] != '/'; i-- {
		if full[i] == ':' {
			return full[i+1:]
		}
	}
	return ""
}

func blobPath(d digest.Digest) string { return "blobs/" + d.Algorithm().String() + "/" + d.Encoded() }

// layerMediaType tells a stored layer's compression from its first bytes.
func (s *Store) layerMediaType(d digest.Digest) (string, error) {
	f, err := s.cs.Open(d)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(f, head)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return ocispec.MediaTypeImageLayerGzip, nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return ocispec.MediaTypeImageLayer, nil
}

var epoch = time.Unix(0, 0)

func (s *Store) writeBlob(tw *tar.Writer, d digest.Digest) error {
	size, err := s.cs.Size(d)
	if err != nil {
		return err
	}
	f, err := s.cs.Open(d)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := tw.WriteHeader(&tar.Header{Name: blobPath(d), Mode: 0o444, Size: size, ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	n, err := io.Copy(tw, f)
	if err == nil && n != size {
		err = fmt.Errorf("blob %s: size changed while saving", d)
	}
	return err
}

func writeFile(tw *tar.Writer, name string, data []byte) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o444, Size: int64(len(data)), ModTime: epoch, Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := tw.Write(data)
	return err
}
