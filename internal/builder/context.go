package builder

import (
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
	"golang.org/x/sys/unix"
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

// memoryContext is the largest context unpacked into memory (a tmpfs of
// the build's): file creation on a disk costs ten times a tmpfs's, and a
// rebuild from cache is mostly the context's unpacking. Larger contexts
// go to the disk.
const memoryContext = 128 << 20

// unpackContext reads a build context (a tar, compressed or not, or a
// bare Dockerfile, as dockerd takes them) into dir and finds its
// Dockerfile: name, else "Dockerfile" (or "dockerfile").
func unpackContext(body io.Reader, dir, name string, limit int64) (*buildContext, error) {
	if limit <= 0 {
		limit = DefaultContextLimit
	}
	plain, err := archive.Decompress(body)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	defer plain.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	// The context is read (up to memoryContext into memory, the rest into
	// a file) before it is unpacked, to choose where it goes.
	sp, err := readSpool(&limitReader{r: plain, limit: limit}, filepath.Dir(dir))
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	defer sp.close()
	if !isTar(sp.head(512)) {
		// The whole body is the Dockerfile (docker build - < Dockerfile).
		df, err := io.ReadAll(sp.reader())
		if err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		return &buildContext{dir: dir, dockerfile: df, dockerfileName: "-"}, nil
	}
	if sp.file == nil {
		// Room for the files and their metadata: the tar's size is an
		// upper bound of its content, doubled for small files' blocks.
		opts := fmt.Sprintf("size=%d,mode=0700", 2*int64(len(sp.mem))+16<<20)
		if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
	}
	if _, err := archive.Apply(dir, sp.reader(), archive.Plain); err != nil {
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

// spool holds a stream read in full: its start in memory, the rest (past
// memoryContext) in a file.
type spool struct {
	mem  []byte
	file *os.File
}

func readSpool(r io.Reader, dir string) (*spool, error) {
	var buf bytes.Buffer
	n, err := io.Copy(&buf, io.LimitReader(r, memoryContext+1))
	if err != nil {
		return nil, err
	}
	sp := &spool{mem: buf.Bytes()}
	if n <= memoryContext {
		return sp, nil
	}
	if sp.file, err = os.CreateTemp(dir, "context-"); err != nil {
		return nil, err
	}
	os.Remove(sp.file.Name()) // open only
	if _, err := io.Copy(sp.file, r); err != nil {
		sp.close()
		return nil, err
	}
	_, err = sp.file.Seek(0, io.SeekStart)
	return sp, err
}

func (s *spool) head(n int) []byte { return s.mem[:min(n, len(s.mem))] }

func (s *spool) reader() io.Reader {
	if s.file == nil {
		return bytes.NewReader(s.mem)
	}
	return io.MultiReader(bytes.NewReader(s.mem), s.file)
}

func (s *spool) close() {
	if s.file != nil {
		s.file.Close()
	}
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
