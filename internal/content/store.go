package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/errdefs"
)

// Provider reads blobs.
type Provider interface {
	// Open returns the blob, or an error of class errdefs.ErrNotFound.
	Open(d digest.Digest) (*os.File, error)
	// Size returns the blob's size, or an error of class errdefs.ErrNotFound.
	Size(d digest.Digest) (int64, error)
}

// Ingester writes blobs.
type Ingester interface {
	// Ingest stores the bytes of r. With expected set, a blob whose digest
	// differs is refused (errdefs.ErrInvalidArgument) and nothing is kept.
	Ingest(r io.Reader, expected digest.Digest) (digest.Digest, int64, error)
}

// Store is a content store in one directory.
type Store struct {
	root string
}

var (
	_ Provider = (*Store)(nil)
	_ Ingester = (*Store)(nil)
)

// New opens (creating if needed) the store at root and removes temporary
// files a crash may have left.
func New(root string) (*Store, error) {
	for _, d := range []string{"blobs/sha256", "ingest"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, err
		}
	}
	s := &Store{root: root}
	entries, err := os.ReadDir(s.ingestDir())
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		_ = os.Remove(filepath.Join(s.ingestDir(), e.Name()))
	}
	return s, nil
}

func (s *Store) ingestDir() string { return filepath.Join(s.root, "ingest") }

// Path is where blob d lives (whether or not it exists).
func (s *Store) Path(d digest.Digest) (string, error) {
	if err := d.Validate(); err != nil {
		return "", fmt.Errorf("digest %q: %v: %w", d, err, errdefs.ErrInvalidArgument)
	}
	if d.Algorithm() != digest.SHA256 {
		return "", fmt.Errorf("digest %s: only sha256 is supported: %w", d, errdefs.ErrInvalidArgument)
	}
	return filepath.Join(s.root, "blobs", "sha256", d.Encoded()), nil
}

// Open implements Provider.
func (s *Store) Open(d digest.Digest) (*os.File, error) {
	p, err := s.Path(d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	return f, err
}

// Size implements Provider.
func (s *Store) Size(d digest.Digest) (int64, error) {
	p, err := s.Path(d)
	if err != nil {
		return 0, err
	}
	fi, err := os.Stat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, fmt.Errorf("blob %s: %w", d, errdefs.ErrNotFound)
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// Ingest implements Ingester.
func (s *Store) Ingest(r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	if expected != "" {
		if _, err := s.Path(expected); err != nil {
			return "", 0, err
		}
	}
	tmp, err := os.CreateTemp(s.ingestDir(), "blob-")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", 0, fmt.Errorf("ingest: %w", err)
	}
	d := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil))
	if expected != "" && d != expected {
		return "", 0, fmt.Errorf("blob digest %s does not match the expected %s: %w", d, expected, errdefs.ErrInvalidArgument)
	}
	p, _ := s.Path(d)
	if _, err := os.Stat(p); err == nil {
		return d, n, nil // already there
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", 0, fmt.Errorf("ingest: %w", err)
	}
	return d, n, syncDir(filepath.Dir(p))
}

// IngestBytes stores b; a blob already stored is not written again.
func (s *Store) IngestBytes(b []byte, expected digest.Digest) (digest.Digest, error) {
	d := digest.FromBytes(b)
	if expected != "" && d != expected {
		return "", fmt.Errorf("blob digest %s does not match the expected %s: %w", d, expected, errdefs.ErrInvalidArgument)
	}
	if p, err := s.Path(d); err == nil {
		if _, err := os.Stat(p); err == nil {
			return d, nil
		}
	}
	d, _, err := s.Ingest(bytes.NewReader(b), expected)
	return d, err
}

// Delete removes blob d. Removing a missing blob is not an error.
func (s *Store) Delete(d digest.Digest) error {
	p, err := s.Path(d)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// Walk calls fn for every blob.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	dir := filepath.Join(s.root, "blobs", "sha256")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		d := digest.NewDigestFromEncoded(digest.SHA256, e.Name())
		if d.Validate() != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		if err := fn(d, fi.Size()); err != nil {
			return err
		}
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
