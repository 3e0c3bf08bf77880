package builder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/errdefs"
)

// copyRequest is a COPY or an ADD.
type copyRequest struct {
	src      instructions.SourcesAndDest
	add      bool
	from     string
	chown    string
	chmod    string
	link     bool
	exclude  []string
	parents  bool
	checksum string
	unpack   *bool
}

// source is one thing to copy, found on the host.
type source struct {
	name string // as the Dockerfile says it (a match of its pattern)
	path string // where it is
	// base names a copied file in a destination directory.
	base string
	// fromImage: owners are kept (COPY --from); context files become root's.
	fromImage bool
	// mode, when set, is the file's mode (downloads, heredocs).
	mode    os.FileMode
	extract bool // ADD of a local archive: unpacked into the destination
}

func (r *copyRequest) verb() string {
	if r.add {
		return "ADD"
	}
	return "COPY"
}

// copy runs a COPY or ADD: its sources are found (in the context, an
// earlier stage or an image, downloaded, or written from a heredoc), the
// step's cache key digests their content and metadata, and they are
// written into a layer of their own.
func (sr *stageRun) copy(r copyRequest) error {
	if r.parents {
		return fmt.Errorf("%s --parents is not supported yet: %w", r.verb(), errdefs.ErrNotImplemented)
	}
	var mode os.FileMode
	if r.chmod != "" {
		m, err := strconv.ParseUint(r.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return fmt.Errorf("%s --chmod=%s: not an octal mode: %w", r.verb(), r.chmod, errdefs.ErrInvalidArgument)
		}
		mode = os.FileMode(m) | modeSet
	}
	var from *state
	if r.from != "" {
		if j, ok := sr.stageRef(r.from, sr.index); ok {
			from = sr.results[j]
		} else {
			id, conf, err := sr.image(r.from)
			if err != nil {
				return err
			}
			from = &state{id: id, conf: *conf}
		}
	}
	// plan finds the sources in srcRoot and digests them.
	plan := func(srcRoot string) ([]source, copyPlan, error) {
		sources, err := sr.sources(srcRoot, &r, from != nil)
		if err != nil {
			return nil, copyPlan{}, err
		}
		p := copyPlan{names: names(sources)}
		for _, s := range sources {
			sum, err := treeDigest(s.path, s.fromImage)
			if err != nil {
				return nil, copyPlan{}, err
			}
			p.sums = append(p.sums, s.base+"="+sum)
		}
		return sources, p, nil
	}
	if from != nil {
		return sr.withView(from, func(root string) error {
			sources, p, err := plan(root)
			if err != nil {
				return err
			}
			return sr.commitCopy(&r, mode, from, p, func() ([]source, error) { return sources, nil })
		})
	}
	// From the context: what the same COPY found in a context of the same
	// digest before holds, and the context is unpacked only if the step
	// must run (plans.go).
	memo := sr.b.plans.key(sr.bc, &r)
	if p, ok := sr.b.plans.get(memo); ok {
		return sr.commitCopy(&r, mode, nil, p, func() ([]source, error) {
			dir, err := sr.bc.unpacked()
			if err != nil {
				return nil, err
			}
			sources, _, err := plan(dir)
			return sources, err
		})
	}
	dir, err := sr.bc.unpacked()
	if err != nil {
		return err
	}
	sources, p, err := plan(dir)
	if err != nil {
		return err
	}
	sr.b.plans.put(memo, p)
	return sr.commitCopy(&r, mode, nil, p, func() ([]source, error) { return sources, nil })
}

// copyPlan is what a COPY's cache key needs of its sources: their names
// and the digests of their content and metadata.
type copyPlan struct {
	names, sums []string
}

// commitCopy takes the COPY or ADD of plan p from the cache, or copies
// the sources that find gives into a new layer.
func (sr *stageRun) commitCopy(r *copyRequest, mode os.FileMode, from *state, p copyPlan, find func() ([]source, error)) error {
	dest := r.src.DestPath
	destDir := strings.HasSuffix(dest, "/") || dest == "." || strings.HasSuffix(dest, "/.")
	if len(p.names) > 1 && !destDir {
		return fmt.Errorf("When using %s with more than one source file, the destination must be a directory and end with a /: %w", r.verb(), errdefs.ErrInvalidArgument)
	}
	if !path.IsAbs(dest) {
		dest = path.Join(orRoot(sr.cur.conf.Config.WorkingDir), dest)
	}
	dest = path.Clean(dest)
	fromID := ""
	if from != nil {
		fromID = from.id.String()
	}
	key := cacheKey(sr.cur.id, r.verb(), dest, destDir, r.chown, r.chmod, r.exclude, fromID, p.sums, r.unpack)
	createdBy := fmt.Sprintf("%s %s %s # buildkit", r.verb(), strings.Join(p.names, " "), r.src.DestPath)
	return sr.commitOrReuse(key, func() (string, bool, error) {
		sources, err := find()
		if err != nil {
			return "", false, err
		}
		_, err = sr.changeFS(func(root string) (bool, error) {
			c, err := newCopier(root, r.chown, mode, r.exclude)
			if err != nil {
				return false, err
			}
			for _, s := range sources {
				if err := c.copySource(s, dest, destDir); err != nil {
					return false, fmt.Errorf("%s %s: %w", r.verb(), s.name, err)
				}
			}
			return true, c.finish()
		})
		return createdBy, false, err
	})
}

func names(ss []source) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.name
	}
	return out
}

// modeSet marks a --chmod mode as given (a mode of 0 is a valid one).
const modeSet = os.ModeSticky << 1

// sources finds what a COPY or ADD copies, in root (the context or the
// view of a stage or image).
func (sr *stageRun) sources(root string, r *copyRequest, fromImage bool) ([]source, error) {
	var out []source
	for _, c := range r.src.SourceContents {
		f, err := sr.work.createTemp("heredoc-")
		if err != nil {
			return nil, err
		}
		_, err = f.WriteString(c.Data)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, source{name: "<<" + c.Path, path: f.Name(), base: path.Base(c.Path), mode: 0o644})
	}
	for _, name := range r.src.SourcePaths {
		if r.add && isURL(name) {
			s, err := sr.download(name, r.checksum)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			continue
		}
		if r.checksum != "" {
			return nil, fmt.Errorf("ADD --checksum is only for URLs: %w", errdefs.ErrInvalidArgument)
		}
		rel := path.Clean(name)
		if !fromImage && (rel == ".." || strings.HasPrefix(rel, "../")) {
			return nil, fmt.Errorf("%s failed: forbidden path outside the build context: %s: %w", r.verb(), name, errdefs.ErrInvalidArgument)
		}
		rel = strings.TrimPrefix(path.Clean("/"+rel), "/")
		matches := []string{rel}
		if strings.ContainsAny(rel, "*?[") {
			found, err := filepath.Glob(filepath.Join(root, rel))
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w: %w", r.verb(), name, err, errdefs.ErrInvalidArgument)
			}
			matches = matches[:0]
			for _, m := range found {
				mrel, _ := filepath.Rel(root, m)
				matches = append(matches, mrel)
			}
			if len(matches) == 0 {
				return nil, fmt.Errorf("%s failed: no source files were specified (%s matches nothing): %w", r.verb(), name, errdefs.ErrInvalidArgument)
			}
		}
		for _, m := range matches {
			p, err := secureJoin(root, m)
			if err != nil {
				return nil, err
			}
			fi, err := os.Stat(p)
			if err != nil {
				where := "build context or excluded by .dockerignore"
				if fromImage {
					where = "source image or stage"
				}
				return nil, fmt.Errorf("%s failed: file not found in %s: stat %s: file does not exist: %w", r.verb(), where, m, errdefs.ErrInvalidArgument)
			}
			s := source{name: m, path: p, base: path.Base("/" + m), fromImage: fromImage}
			if r.add && fi.Mode().IsRegular() && (r.unpack == nil || *r.unpack) {
				if s.extract, err = isArchive(p); err != nil {
					return nil, fmt.Errorf("ADD %s: %w: %w", m, err, errdefs.ErrNotImplemented)
				}
			}
			out = append(out, s)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s failed: no source files were specified: %w", r.verb(), errdefs.ErrInvalidArgument)
	}
	return out, nil
}

func isURL(s string) bool {
	return strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://")
}

// isArchive tells whether a file is a tar, plain or compressed; an xz
// archive is an error (it cannot be unpacked here yet, and copying it
// as a file instead would be a surprise).
func isArchive(p string) (bool, error) {
	f, err := os.Open(p)
	if err != nil {
		return false, nil
	}
	defer f.Close()
	plain, err := archive.Decompress(f)
	if err != nil {
		if errors.Is(err, archive.ErrXZ) {
			return false, err
		}
		return false, nil
	}
	defer plain.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(plain, head)
	return isTar(head[:n]), nil
}

// download fetches an ADD URL into the build's work directory (mode 0600
// and the server's Last-Modified time, as docker).
func (sr *stageRun) download(rawURL, checksum string) (source, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %w: %w", rawURL, err, errdefs.ErrInvalidArgument)
	}
	if strings.HasSuffix(u.Path, ".git") {
		return source{}, fmt.Errorf("ADD of a git repository (%s) is not supported yet: %w", rawURL, errdefs.ErrNotImplemented)
	}
	req, err := http.NewRequestWithContext(sr.ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return source{}, err
	}
	resp, err := (&http.Client{Timeout: 30 * time.Minute}).Do(req)
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return source{}, fmt.Errorf("failed to GET %s with status %s: %w", rawURL, resp.Status, errdefs.ErrInvalidArgument)
	}
	f, err := sr.work.createTemp("download-")
	if err != nil {
		return source{}, err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(f, h), resp.Body)
	f.Close()
	if err != nil {
		return source{}, fmt.Errorf("ADD %s: %w", rawURL, err)
	}
	if checksum != "" {
		want, err := digest.Parse(checksum)
		if err != nil {
			return source{}, fmt.Errorf("ADD --checksum=%s: %w: %w", checksum, err, errdefs.ErrInvalidArgument)
		}
		if got := digest.NewDigestFromBytes(digest.SHA256, h.Sum(nil)); got != want {
			return source{}, fmt.Errorf("ADD %s: the checksum is %s, not %s: %w", rawURL, got, want, errdefs.ErrInvalidArgument)
		}
	}
	if t, err := http.ParseTime(resp.Header.Get("Last-Modified")); err == nil {
		os.Chtimes(f.Name(), t, t)
	}
	base := path.Base(u.Path)
	if base == "/" || base == "." || base == "" {
		base = "index.html"
	}
	return source{name: rawURL, path: f.Name(), base: base, mode: 0o600}, nil
}

// treeDigest digests a file or tree for the cache: names, types, modes,
// sizes, content and link targets (owners only where they are copied
// along); times do not count, as in docker's cache.
func treeDigest(p string, owners bool) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(p, func(q string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(p, q)
		size := int64(0) // a directory's size is its file system's business
		if fi.Mode().IsRegular() {
			size = fi.Size()
		}
		fmt.Fprintf(h, "%s\x00%o\x00%d\x00", rel, fi.Mode(), size)
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && owners {
			fmt.Fprintf(h, "%d:%d\x00", st.Uid, st.Gid)
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			t, err := os.Readlink(q)
			if err != nil {
				return err
			}
			h.Write([]byte(t))
		case fi.Mode().IsRegular():
			f, err := os.Open(q)
			if err != nil {
				return err
			}
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil)), err
}
