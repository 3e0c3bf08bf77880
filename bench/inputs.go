package main

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/tent-project/tent/internal/oci"
)

// busyboxRootfs makes a minimal root filesystem from the host's static
// busybox (there is no Docker Hub here).
func busyboxRootfs(dir string) error {
	bin := filepath.Join(dir, "bin")
	for _, d := range []string{"bin", "proc", "sys", "dev", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	data, err := os.ReadFile("/bin/busybox")
	if err != nil {
		return fmt.Errorf("need a static busybox (apt-get install busybox-static): %w", err)
	}
	if err := os.WriteFile(filepath.Join(bin, "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, a := range []string{"sh", "true", "sleep", "ping", "nc"} {
		if err := os.Symlink("busybox", filepath.Join(bin, a)); err != nil {
			return err
		}
	}
	return nil
}

// makeBundle makes an OCI bundle running `true` in a copy of rootfs, with
// tent's default spec (namespaces, cgroup, seccomp profile).
func makeBundle(dir, rootfs string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if out, err := exec.Command("cp", "-a", rootfs, filepath.Join(dir, "rootfs")).CombinedOutput(); err != nil {
		return fmt.Errorf("cp: %v: %s", err, out)
	}
	s := oci.DefaultSpec(false)
	s.Process.Terminal = false
	s.Process.Args = []string{"true"}
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644)
}

// cycle runs an OCI runtime's create, start and delete --force once and
// returns the time it took.
func cycle(bin, root, bundle string, i int) (time.Duration, error) {
	id := fmt.Sprintf("bench-%d", i)
	// A file, not a pipe: create hands its stdio to the container, and a
	// pipe would make us wait for the container to close it.
	out, err := os.CreateTemp("", "bench-out")
	if err != nil {
		return 0, err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	start := time.Now()
	for _, args := range [][]string{
		{"create", "--bundle", bundle, id},
		{"start", id},
		{"delete", "--force", id},
	} {
		cmd := exec.Command(bin, append([]string{"--root", root}, args...)...)
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Run(); err != nil {
			msg, _ := os.ReadFile(out.Name())
			return 0, fmt.Errorf("%s %v: %v: %s", filepath.Base(bin), args, err, msg)
		}
	}
	return time.Since(start), nil
}

// bigImage is a generated multi-layer image in a docker-save archive.
type bigImage struct {
	path, tag, id string
	bytes         int64 // uncompressed layer bytes
	layers        int
}

// layerShares split the image's size over its layers, largest at the
// bottom as in most real images (a base system, then the application).
var layerShares = []float64{0.40, 0.25, 0.15, 0.12, 0.08}

// writeBigImage writes a docker-save archive of an image of about mb
// megabytes of files: each layer a mix of small and large files whose
// content is half random, half text, so it compresses about 2:1 like
// binaries and libraries do. The content is deterministic.
func writeBigImage(path string, mb int) (bigImage, error) {
	img := bigImage{path: path, tag: "big:bench", layers: len(layerShares)}
	dir := filepath.Dir(path)
	var diffIDs, layerFiles []string
	var history []map[string]string
	for i, share := range layerShares {
		lf := filepath.Join(dir, fmt.Sprintf("layer%d.tar", i))
		n, digest, err := writeLayer(lf, i, int64(share*float64(mb)*1e6))
		if err != nil {
			return img, err
		}
		defer os.Remove(lf)
		img.bytes += n
		diffIDs = append(diffIDs, "sha256:"+digest)
		layerFiles = append(layerFiles, lf)
		history = append(history, map[string]string{"created": "2026-01-01T00:00:00Z", "created_by": fmt.Sprintf("bench layer %d", i)})
	}
	config, err := json.Marshal(map[string]any{
		"architecture": runtime.GOARCH,
		"os":           "linux",
		"created":      "2026-01-01T00:00:00Z",
		"config":       map[string]any{"Cmd": []string{"sh"}},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": diffIDs},
		"history":      history,
	})
	if err != nil {
		return img, err
	}
	sum := sha256.Sum256(config)
	img.id = "sha256:" + hex.EncodeToString(sum[:])
	var layerNames []string
	for _, d := range diffIDs {
		layerNames = append(layerNames, d[len("sha256:"):]+"/layer.tar")
	}
	manifest, err := json.Marshal([]map[string]any{{
		"Config": img.id[len("sha256:"):] + ".json", "RepoTags": []string{img.tag}, "Layers": layerNames,
	}})
	if err != nil {
		return img, err
	}
	f, err := os.Create(path)
	if err != nil {
		return img, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	add := func(name string, size int64, r io.Reader) error {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: size, Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		_, err := io.Copy(tw, r)
		return err
	}
	for i, lf := range layerFiles {
		l, err := os.Open(lf)
		if err != nil {
			return img, err
		}
		st, _ := l.Stat()
		err = add(layerNames[i], st.Size(), l)
		l.Close()
		if err != nil {
			return img, err
		}
	}
	for name, b := range map[string][]byte{img.id[len("sha256:"):] + ".json": config, "manifest.json": manifest} {
		if err := add(name, int64(len(b)), bytes.NewReader(b)); err != nil {
			return img, err
		}
	}
	if err := tw.Close(); err != nil {
		return img, err
	}
	return img, f.Close()
}

// writeLayer writes one layer tar of about size bytes of files and returns
// the bytes of file content and the tar's sha256 (its diff ID).
func writeLayer(path string, layer int, size int64) (int64, string, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	tw := tar.NewWriter(io.MultiWriter(f, h))
	rng := rand.New(rand.NewPCG(uint64(layer), 42))
	dir := fmt.Sprintf("data/layer%d/", layer)
	if err := tw.WriteHeader(&tar.Header{Name: dir, Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
		return 0, "", err
	}
	var written int64
	for i := 0; written < size; i++ {
		// Three in four files are small (4-64 KiB), the rest large (1-4 MiB).
		n := int64(4<<10 + rng.IntN(60<<10))
		if i%4 == 3 {
			n = int64(1<<20 + rng.IntN(3<<20))
		}
		n = min(n, size-written)
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("%sf%05d", dir, i), Mode: 0o644, Size: n, Typeflag: tar.TypeReg}); err != nil {
			return 0, "", err
		}
		if _, err := io.CopyN(tw, &content{rng: rng}, n); err != nil {
			return 0, "", err
		}
		written += n
	}
	if err := tw.Close(); err != nil {
		return 0, "", err
	}
	return written, hex.EncodeToString(h.Sum(nil)), f.Close()
}

// content yields 4 KiB blocks, alternately random bytes and words.
type content struct {
	rng   *rand.Rand
	block int
}

var words = []string{"container ", "image ", "layer ", "overlay ", "namespace ", "cgroup ", "registry ", "manifest ", "digest ", "runtime "}

func (c *content) Read(p []byte) (int, error) {
	n := min(len(p), 4096)
	if c.block++; c.block%2 == 0 {
		for i := 0; i < n; i += 8 {
			v := c.rng.Uint64()
			for j := 0; j < 8 && i+j < n; j++ {
				p[i+j] = byte(v >> (8 * j))
			}
		}
		return n, nil
	}
	for i := 0; i < n; {
		i += copy(p[i:n], words[c.rng.IntN(len(words))])
	}
	return n, nil
}
