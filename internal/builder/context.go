package builder

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
	"golang.org/x/sys/unix"
)

// DefaultContextLimit is the largest build context the engine takes
// (uncompressed), unless the daemon is told otherwise.
const DefaultContextLimit int64 = 8 << 30

// buildContext is a build's context: its tar, unpacked in a directory of
// the engine's (with what .dockerignore excludes gone) the first time a
// step needs its files. A rebuild whose steps all come from the cache
// never unpacks it: the Dockerfile is read from the tar, and what a COPY
// found in a context of the same digest before is known (plans.go).
type buildContext struct {
	work       *workDir
	dir        string // once unpacked: the work directory's "context"
	dockerfile []byte
	// dockerfileName is the Dockerfile's path in the context ("-" when the
	// request's body was the Dockerfile itself).
	dockerfileName string
	// digest is the sha256 of the context's tar ("" for a bare
	// Dockerfile): the same tar, the same files.
	digest string
	sp     *spool // the tar (nil for a bare Dockerfile)
	// absent: the context is known (BuildKnown), its files not here.
	absent bool
	once   sync.Once
	err    error
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

// readContext reads a build context (a tar, compressed or not, or a
// bare Dockerfile, as dockerd takes them), to be unpacked into the work
// directory when a step needs it, and finds its Dockerfile: name, else
// "Dockerfile" (or "dockerfile"). The caller closes it.
func readContext(body io.Reader, work *workDir, name string, limit int64) (*buildContext, error) {
	if limit <= 0 {
		limit = DefaultContextLimit
	}
	plain, err := archive.Decompress(body)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	defer plain.Close()
	// The context is read (up to memoryContext into memory, the rest into
	// a file), and digested, before anything is unpacked.
	h := sha256.New()
	sp, err := readSpool(io.TeeReader(&limitReader{r: plain, limit: limit}, h), work.parent)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	c := &buildContext{work: work}
	if !isTar(sp.head(512)) {
		// The whole body is the Dockerfile (docker build - < Dockerfile).
		defer sp.close()
		if c.dockerfile, err = io.ReadAll(sp.reader()); err != nil {
			return nil, fmt.Errorf("build context: %w", err)
		}
		c.dockerfileName = "-"
		return c, nil
	}
	c.sp, c.digest = sp, hex.EncodeToString(h.Sum(nil))
	if c.dockerfile, c.dockerfileName = tarDockerfile(sp.reader(), name); c.dockerfile == nil {
		// Not a plain file of the tar (a link, say, or missing): read
		// from the unpacked context, which says why if it is not there.
		if err := c.readDockerfile(name); err != nil {
			c.close()
			return nil, err
		}
	}
	return c, nil
}

// dockerfileNames are the names a Dockerfile is looked for under.
func dockerfileNames(name string) []string {
	if name == "" {
		return []string{"Dockerfile", "dockerfile"}
	}
	return []string{name}
}

// tarDockerfile finds the Dockerfile among the tar's regular files
// (nil if it is not one).
func tarDockerfile(r io.Reader, name string) ([]byte, string) {
	want := map[string]bool{}
	for _, n := range dockerfileNames(name) {
		want[path.Clean(n)] = true
	}
	found := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		n := strings.TrimPrefix(path.Clean("/"+h.Name), "/")
		if !want[n] {
			continue
		}
		if h.Typeflag != tar.TypeReg {
			return nil, "" // the last entry of a name counts: this one is not a file
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, ""
		}
		found[n] = b
	}
	for _, n := range dockerfileNames(name) {
		if b, ok := found[path.Clean(n)]; ok {
			return b, filepath.Clean(n)
		}
	}
	return nil, ""
}

// unpacked is the directory of the context's files, unpacked on the
// first call (stages that run at once share it).
func (c *buildContext) unpacked() (string, error) {
	c.once.Do(func() { c.err = c.unpack() })
	return c.dir, c.err
}

func (c *buildContext) unpack() error {
	if c.absent {
		return errNotCached
	}
	work, err := c.work.path()
	if err != nil {
		return err
	}
	c.dir = filepath.Join(work, "context")
	if err := os.Mkdir(c.dir, 0o700); err != nil {
		return err
	}
	if c.sp == nil {
		return nil // a bare Dockerfile: an empty context
	}
	if c.sp.file == nil {
		// Room for the files and their metadata: the tar's size is an
		// upper bound of its content, doubled for small files' blocks.
		opts := fmt.Sprintf("size=%d,mode=0700", 2*int64(len(c.sp.mem))+16<<20)
		if err := unix.Mount("tmpfs", c.dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts); err != nil {
			return fmt.Errorf("build context: %w", err)
		}
	}
	if _, err := archive.Apply(c.dir, c.sp.reader(), archive.Plain); err != nil {
		return fmt.Errorf("build context: %w", err)
	}
	return c.applyIgnore()
}

// workDir is a build's work directory (the unpacked context, mounts of
// RUN steps' roots, heredocs, downloads), made the first time a step
// needs it: a rebuild from the cache makes none, and removes none.
type workDir struct {
	parent string
	once   sync.Once
	dir    string
	err    error
}

func (w *workDir) path() (string, error) {
	w.once.Do(func() { w.dir, w.err = os.MkdirTemp(w.parent, "build-") })
	return w.dir, w.err
}

func (w *workDir) mkdirTemp(pattern string) (string, error) {
	dir, err := w.path()
	if err != nil {
		return "", err
	}
	return os.MkdirTemp(dir, pattern)
}

func (w *workDir) createTemp(pattern string) (*os.File, error) {
	dir, err := w.path()
	if err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, pattern)
}

// remove removes the directory and what is below it, if it was made.
func (w *workDir) remove() {
	if w.dir != "" {
		removeAll(w.dir)
	}
}

// close lets the tar go (the directory goes with the build's).
func (c *buildContext) close() {
	if c.sp != nil {
		c.sp.close()
	}
}

// spool holds a stream read in full: its start in memory, the rest (past
// memoryContext) in a file.
type spool struct {
	mem  []byte
	file *os.File
}

func readSpool(r io.Reader, dir string) (*spool, error) {
	buf := bytes.NewBuffer(spoolBuffers.get())
	n, err := io.Copy(buf, io.LimitReader(r, memoryContext+1))
	if err != nil {
		spoolBuffers.put(buf.Bytes())
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
	spoolBuffers.put(s.mem)
	s.mem = nil
}

// spoolBuffers keeps the memory of recent contexts for the next builds'
// spools. A context read into fresh memory pays for the memory's page
// faults and zeroing, and the garbage collector's cycle it brings on,
// every time: in a cached rebuild of the bench's 1.4 MB context that was
// a third of the daemon's time (session 16). Two buffers of up to 8 MiB
// are kept, once builds happened; larger ones go back to the heap.
var spoolBuffers = bufferPool{keep: 2, largest: 8 << 20}

// bufferPool is a free list of byte slices that, unlike a sync.Pool, the
// garbage collector does not empty.
type bufferPool struct {
	mu      sync.Mutex
	free    [][]byte
	keep    int // buffers kept at most
	largest int // the largest capacity kept
}

// get returns a kept buffer, emptied, or nil.
func (p *bufferPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) == 0 {
		return nil
	}
	b := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	return b[:0]
}

// put gives b back; its caller no longer reads or writes it.
func (p *bufferPool) put(b []byte) {
	if cap(b) == 0 || cap(b) > p.largest {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.free) < p.keep {
		p.free = append(p.free, b)
	}
}

// isTar tells a tar header from anything else by its magic (ustar or GNU).
func isTar(head []byte) bool {
	return len(head) >= 262 && bytes.HasPrefix(head[257:], []byte("ustar"))
}

func (c *buildContext) readDockerfile(name string) error {
	candidates := dockerfileNames(name)
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

// path resolves a path of the context inside it (symlinks too), once
// the context is unpacked.
func (c *buildContext) path(rel string) (string, error) {
	dir, err := c.unpacked()
	if err != nil {
		return "", err
	}
	return secureJoin(dir, rel)
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
