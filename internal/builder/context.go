package builder

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
)

// DefaultContextLimit is the largest build context the engine takes
// (uncompressed), unless the daemon is told otherwise.
const DefaultContextLimit int64 = 8 << 30

// buildContext is a build's context unpacked in a directory of the
// engine's, with what .dockerignore excludes already gone.
type buildContext struct {
	dir        string
	dockerfile []byte
	// dockerfileName is the Dockerfile's path in the context ("-" when the
	// request's body was the Dockerfile itself).
	dockerfileName string
}

// limitReader fails once more than n bytes were read.
type limitReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n += int64(n)
	if l.n > l.limit {
		return n, fmt.Errorf("the build context is larger than the engine's limit of %d MiB: %w", l.limit>>20, errdefs.ErrInvalidArgument)
	}
	return n, err
}

// unpackContext reads a build context (a tar, compressed or not, or a
// bare Dockerfile, as dockerd takes them) into dir and finds its
// Dockerfile: name, else "Dockerfile" (or "dockerfile").
func unpackContext(body io.Reader, dir, name string, limit int64) (*buildContext, error) {
	if limit <= 0 {
		limit = DefaultContextLimit
	}
	plain, err := archive.Decompress(&limitReader{r: body, limit: limit})
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	defer plain.Close()
	br := bufio.NewReaderSize(plain, 1024)
	head, _ := br.Peek(512)
	if !isTar(head) {
		// The whole body is the Dockerfile (docker build - < Dockerfile).
		df, err := io.ReadAll(br)
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		return &buildContext{dir: dir, dockerfile: df, dockerfileName: "-"}, nil
	}
	if _, err := archive.Apply(dir, br, archive.Plain); err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	c := &buildContext{dir: dir}
	if err := c.readDockerfile(name); err != nil {
		return nil, err
	}
	if err := c.applyIgnore(); err != nil {
		return nil, err
	}
	return c, nil
}

// isTar tells a tar header from anything else by its magic (ustar or GNU).
func isTar(head []byte) bool {
	return len(head) >= 262 && bytes.HasPrefix(head[257:], []byte("ustar"))
}

func (c *buildContext) readDockerfile(name string) error {
	candidates := []string{name}
	if name == "" {
		candidates = []string{"Dockerfile", "dockerfile"}
	}
	for _, n := range candidates {
		p, err := c.path(n)
		if err != nil {
			return err
		}
		df, err := os.ReadFile(p)
		if err == nil {
			c.dockerfile, c.dockerfileName = df, filepath.Clean(n)
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("the Dockerfile: %w", err)
		}
	}
	return fmt.Errorf("Cannot locate specified Dockerfile: %s: %w", candidates[0], errdefs.ErrInvalidArgument)
}

// path resolves a path of the context inside it (symlinks too).
func (c *buildContext) path(rel string) (string, error) {
	return secureJoin(c.dir, rel)
}

// ignorePatterns reads <Dockerfile>.dockerignore next to the Dockerfile,
// else .dockerignore at the context's root.
func (c *buildContext) ignorePatterns() ([]string, error) {
	files := []string{".dockerignore"}
	if c.dockerfileName != "" && c.dockerfileName != "-" {
		files = append([]string{c.dockerfileName + ".dockerignore"}, files...)
	}
	for _, f := range files {
		fh, err := os.Open(filepath.Join(c.dir, f))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		pats, err := ignorefile.ReadAll(fh)
		fh.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w: %w", f, err, errdefs.ErrInvalidArgument)
		}
		return pats, nil
	}
	return nil, nil
}

// applyIgnore removes what .dockerignore excludes (the client may have
// sent it: the docker CLI filters, curl does not), except the Dockerfile
// and the ignore file themselves, as dockerd keeps them.
func (c *buildContext) applyIgnore() error {
	pats, err := c.ignorePatterns()
	if err != nil || len(pats) == 0 {
		return err
	}
	return RemoveIgnored(c.dir, pats, []string{c.dockerfileName, ".dockerignore", c.dockerfileName + ".dockerignore"})
}

// RemoveIgnored deletes from dir what the .dockerignore patterns exclude
// (with "!" exceptions), keeping the paths of keep.
func RemoveIgnored(dir string, patterns, keep []string) error {
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return fmt.Errorf(".dockerignore: %w: %w", err, errdefs.ErrInvalidArgument)
	}
	kept := map[string]bool{}
	for _, k := range keep {
		kept[filepath.Clean(k)] = true
	}
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." || kept[rel] {
			return nil
		}
		skip, err := pm.MatchesOrParentMatches(rel)
		if err != nil {
			return err
		}
		if !skip {
			return nil
		}
		if d.IsDir() && pm.Exclusions() {
			return nil // an exception may keep something below: look inside
		}
		if err := os.RemoveAll(p); err != nil {
			return err
		}
		if d.IsDir() {
			return filepath.SkipDir
		}
		return nil
	})
}
