package cli

import (
	"archive/tar"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

type buildFlags struct {
	tags, buildArgs, labels, secrets []string
	file, target, network, platform  string
	iidfile, progress                string
	noCache, pull, quiet             bool
}

func buildCmd(a *app) *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{Use: "build [OPTIONS] PATH | -", Short: "Build an image from a Dockerfile", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error { return a.build(args[0], &f) })
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, `name and optionally a tag ("name:tag")`)
	fl.StringVarP(&f.file, "file", "f", "", `name of the Dockerfile (default "PATH/Dockerfile"; "-" reads it from STDIN)`)
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "set build-time variables (NAME=value, or NAME to take it from the environment)")
	fl.StringArrayVar(&f.labels, "label", nil, "set metadata for the image (key=value)")
	fl.StringVar(&f.target, "target", "", "set the target build stage to build")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use cache when building the image")
	fl.BoolVar(&f.pull, "pull", false, "always attempt to pull a newer version of the base images")
	fl.BoolVarP(&f.quiet, "quiet", "q", false, "suppress the build output and print the image ID on success")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image ID to the file")
	fl.StringVar(&f.network, "network", "", "networking mode for the RUN instructions (default, none, host)")
	fl.StringVar(&f.platform, "platform", "", "set the platform (the host's only, for now)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret to expose to RUN --mount=type=secret (id=ID,src=FILE or id=ID,env=VAR)")
	fl.StringVar(&f.progress, "progress", "auto", "type of progress output (auto: tty on a terminal, else plain; plain, tty, quiet)")
	return cmd
}

func (a *app) build(ctxPath string, f *buildFlags) (err error) {
	q := url.Values{"t": f.tags}
	live := false
	switch f.progress {
	case "auto":
		live = term.IsTerminal(int(os.Stdout.Fd())) && !f.quiet
	case "plain":
	case "quiet":
		f.quiet = true
	case "tty":
		live = !f.quiet
	default:
		return statusError{code: 1, msg: fmt.Sprintf("--progress %s: use auto, plain, tty or quiet", f.progress)}
	}
	for name, v := range map[string]string{"target": f.target, "networkmode": f.network, "platform": f.platform} {
		if v != "" {
			q.Set(name, v)
		}
	}
	for name, v := range map[string]bool{"nocache": f.noCache, "pull": f.pull, "q": f.quiet} {
		if v {
			q.Set(name, "1")
		}
	}
	args := map[string]*string{}
	for _, kv := range f.buildArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			env, set := os.LookupEnv(k)
			if !set {
				continue // as docker: an unset NAME is not passed
			}
			v = env
		}
		args[k] = &v
	}
	labels := map[string]string{}
	for _, kv := range f.labels {
		k, v, _ := strings.Cut(kv, "=")
		labels[k] = v
	}
	secrets, err := readSecrets(f.secrets)
	if err != nil {
		return statusError{code: 1, msg: err.Error()}
	}
	for name, v := range map[string]any{"buildargs": args, "labels": labels, "secrets": secrets} {
		b, _ := json.Marshal(v)
		q.Set(name, string(b))
	}
	bctx, err := buildContext(ctxPath, f.file, time.Now())
	if err != nil {
		return statusError{code: 1, msg: err.Error()}
	}
	if bctx.dockerfile != "" {
		q.Set("dockerfile", bctx.dockerfile)
	}
	header := http.Header{"Content-Type": {"application/x-tar"}}
	if bctx.stat != "" && !f.noCache && !f.pull {
		// The daemon may know these files from a build before: it asks
		// for them only if a step needs them (docs/builder.md).
		header.Set("X-Tent-Context-Stat", bctx.stat)
		header.Set("Expect", "100-continue")
	}
	resp, err := a.c.Stream(a.ctx, "/build", q, header, bctx.write)
	if err != nil {
		return apiError(err, 1)
	}
	defer resp.Body.Close()
	show := func(text string) { fmt.Print(text) }
	if live {
		width, _, _ := term.GetSize(int(os.Stdout.Fd()))
		p := newTTYProgress(os.Stdout, width, time.Now)
		p.run(100 * time.Millisecond)
		show = p.Write
		defer func() { p.Close(err != nil) }() // the error is printed after the display
	}
	dec := json.NewDecoder(resp.Body)
	for {
		var m struct {
			Stream      string
			Error       string
			ErrorDetail struct{ Code int }
			Aux         struct{ ID string }
		}
		if err := dec.Decode(&m); err == io.EOF {
			return nil
		} else if err != nil {
			return statusError{code: 1, msg: "reading the build's answer: " + err.Error()}
		}
		if m.Error != "" {
			code := m.ErrorDetail.Code
			if code == 0 {
				code = 1
			}
			return statusError{code: code, msg: m.Error}
		}
		if m.Aux.ID != "" && f.iidfile != "" {
			if err := os.WriteFile(f.iidfile, []byte(m.Aux.ID), 0o644); err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
		}
		show(m.Stream)
	}
}

// readSecrets reads --secret id=ID,src=FILE (or env=VAR) values.
func readSecrets(specs []string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for _, s := range specs {
		var id, src, env string
		for _, field := range strings.Split(s, ",") {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "id":
				id = v
			case "src", "source":
				src = v
			case "env":
				env = v
			case "type":
				if v != "file" && v != "env" {
					return nil, fmt.Errorf("--secret %s: unknown type %q", s, v)
				}
			default:
				return nil, fmt.Errorf("--secret %s: unknown field %q", s, k)
			}
		}
		if id == "" {
			return nil, fmt.Errorf("--secret %s: an id is needed", s)
		}
		switch {
		case src != "":
			b, err := os.ReadFile(src)
			if err != nil {
				return nil, fmt.Errorf("--secret %s: %w", s, err)
			}
			out[id] = b
		case env != "" || src == "":
			if env == "" {
				env = id
			}
			v, ok := os.LookupEnv(env)
			if !ok {
				return nil, fmt.Errorf("--secret %s: $%s is not set", s, env)
			}
			out[id] = []byte(v)
		}
	}
	return out, nil
}

// sentContext is a build's context as the request sends it.
type sentContext struct {
	write      func(io.Writer) error // writes the request's body
	dockerfile string                // the Dockerfile's name in it, if not the default
	// stat stands for a directory's files by their metadata ("" for
	// other contexts, or files changed too recently to tell): see
	// contextStat.
	stat string
}

// buildContext is the request's body: a directory's tar (what
// .dockerignore excludes left out), a tarball as it is, or STDIN ("-":
// a tar or a Dockerfile). A Dockerfile from elsewhere (-f outside the
// context, -f -) goes into the tar under a name of its own.
func buildContext(ctxPath, file string, now time.Time) (*sentContext, error) {
	if strings.Contains(ctxPath, "://") || strings.HasPrefix(ctxPath, "git@") {
		return nil, fmt.Errorf("remote build contexts (%s) are not supported yet", ctxPath)
	}
	if ctxPath == "-" {
		if file == "-" {
			return nil, errors.New("invalid argument: can't use stdin for both build context and dockerfile")
		}
		return &sentContext{write: copying(os.Stdin), dockerfile: file}, nil
	}
	fi, err := os.Stat(ctxPath)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: %w", err)
	}
	if fi.Mode().IsRegular() { // a tarball, compressed or not
		return &sentContext{dockerfile: file, write: func(w io.Writer) error {
			f, err := os.Open(ctxPath)
			if err != nil {
				return err
			}
			defer f.Close()
			return copying(f)(w)
		}}, nil
	}
	var extra []byte
	name := file
	switch {
	case file == "-":
		if extra, err = io.ReadAll(os.Stdin); err != nil {
			return nil, err
		}
		name = ".dockerfile." + randomHex()
	case file != "":
		abs, _ := filepath.Abs(file)
		root, _ := filepath.Abs(ctxPath)
		if rel, err := filepath.Rel(root, abs); err == nil && !strings.HasPrefix(rel, "..") {
			name = rel
		} else {
			if extra, err = os.ReadFile(file); err != nil {
				return nil, fmt.Errorf("unable to read the Dockerfile: %w", err)
			}
			name = ".dockerfile." + randomHex()
		}
	}
	pats, err := readIgnore(ctxPath, name)
	if err != nil {
		return nil, err
	}
	entries, err := scanContext(ctxPath, pats, name)
	if err != nil {
		return nil, fmt.Errorf("unable to prepare context: %w", err)
	}
	sc := &sentContext{dockerfile: name, write: func(w io.Writer) error { return writeContext(w, entries, name, extra) }}
	if extra == nil { // a Dockerfile of its own makes a new tar each time
		sc.stat = contextStat(ctxPath, name, entries, now)
	}
	return sc, nil
}

// copying writes what r holds.
func copying(r io.Reader) func(io.Writer) error {
	return func(w io.Writer) error {
		_, err := io.Copy(w, r)
		return err
	}
}

func randomHex() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// readIgnore reads <Dockerfile>.dockerignore, else .dockerignore.
func readIgnore(dir, dockerfile string) ([]string, error) {
	names := []string{".dockerignore"}
	if dockerfile != "" {
		names = append([]string{dockerfile + ".dockerignore"}, names...)
	} else {
		names = append([]string{"Dockerfile.dockerignore"}, names...)
	}
	for _, n := range names {
		f, err := os.Open(filepath.Join(dir, n))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return ignorefile.ReadAll(f)
	}
	return nil, nil
}

// contextFile is a file, directory or link of a context directory.
type contextFile struct {
	rel, path string // the name in the tar (with slashes), the path here
	fi        fs.FileInfo
	link      string // a symbolic link's target
}

// scanContext lists what of dir goes into the context's tar: all but
// what pats exclude, the Dockerfile and the ignore files always.
func scanContext(dir string, pats []string, dockerfile string) ([]contextFile, error) {
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return nil, fmt.Errorf(".dockerignore: %w", err)
	}
	keep := map[string]bool{".dockerignore": true, dockerfile: true, "Dockerfile": dockerfile == "", dockerfile + ".dockerignore": true}
	var files []contextFile
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if rel == "." {
			return nil
		}
		if !keep[rel] && len(pats) > 0 {
			skip, err := pm.MatchesOrParentMatches(rel)
			if err != nil {
				return err
			}
			if skip {
				if d.IsDir() && !pm.Exclusions() {
					return filepath.SkipDir
				}
				return nil
			}
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		f := contextFile{rel: filepath.ToSlash(rel), path: p, fi: fi}
		if fi.Mode()&fs.ModeSymlink != 0 {
			if f.link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		files = append(files, f)
		return nil
	})
	return files, err
}

// contextStat is a digest of what the context's tar is made from but
// the files' content: the directory, the Dockerfile's name, and each
// file's name, type and mode, owner, size, link target, modification
// and change times in nanoseconds, device and inode. A file whose
// content changes gets a new change time (which no one sets at will),
// so the same digest later means the same tar, and the daemon, which
// remembers the tar a digest stood for, can build from the cache
// without it. The clock that stamps those times ticks coarsely (a few
// milliseconds): a file changed within a tick of being read could
// change again with the same times, so, as git treats a racily clean
// file, files changed in the last two seconds make no digest ("").
func contextStat(dir, dockerfile string, files []contextFile, now time.Time) string {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "tent-context-stat-v1\x00%s\x00%s\x00", abs, dockerfile)
	recent := now.Add(-2 * time.Second).UnixNano()
	for _, f := range files {
		st, ok := f.fi.Sys().(*syscall.Stat_t)
		if !ok {
			return ""
		}
		mtime, ctime := st.Mtim.Nano(), st.Ctim.Nano()
		if mtime >= recent || ctime >= recent {
			return ""
		}
		fmt.Fprintf(h, "%s\x00%o %d %d %d %d %d %d %d\x00%s\x00", f.rel, st.Mode, st.Uid, st.Gid, st.Size, mtime, ctime, st.Dev, st.Ino, f.link)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeContext writes files as a tar into w, a buffered writer (owners
// as root, as the docker CLI sends them); extra, when set, is added as
// the Dockerfile named dockerfile.
func writeContext(w io.Writer, files []contextFile, dockerfile string, extra []byte) error {
	tw := tar.NewWriter(w)
	buf := make([]byte, 64<<10)
	for _, f := range files {
		hdr, err := tar.FileInfoHeader(f.fi, f.link)
		if err != nil {
			continue // sockets and the like are not sent
		}
		hdr.Name = f.rel
		if f.fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = 0, 0, "", ""
		// No access or change times and whole seconds, as docker's CLI
		// sends them: the same files make the same tar, which the engine
		// knows again, and a header needs no PAX record of its own.
		hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
		hdr.ModTime = hdr.ModTime.Truncate(time.Second)
		hdr.Format = tar.FormatPAX
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if f.fi.Mode().IsRegular() {
			if err := copyFile(tw, f.path, f.fi.Size(), buf); err != nil {
				return err
			}
		}
	}
	if extra != nil {
		if err := tw.WriteHeader(&tar.Header{Name: dockerfile, Mode: 0o644, Size: int64(len(extra)), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := io.Copy(tw, bytes.NewReader(extra)); err != nil {
			return err
		}
	}
	return tw.Close()
}

// copyFile writes the size bytes of the file at p to w. It opens and
// reads the file with bare system calls: os.Open would try to register
// each file with the runtime's poller (an fcntl and a failing epoll_ctl
// more per file, dear where system calls are, as on this host's PVM),
// and a read of exactly what is left saves the read that finds the end.
func copyFile(w io.Writer, p string, size int64, buf []byte) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOATIME, 0)
	if errors.Is(err, unix.EPERM) { // O_NOATIME on a file of another user's
		fd, err = unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return &fs.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	for size > 0 {
		n, err := unix.Read(fd, buf[:min(int64(len(buf)), size)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &fs.PathError{Op: "read", Path: p, Err: err}
		}
		if n == 0 {
			return fmt.Errorf("%s: changed while it was read (%d bytes short)", p, size)
		}
		if _, err := w.Write(buf[:n]); err != nil {
			return err
		}
		size -= int64(n)
	}
	return nil
}

func builderCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "builder", Short: "Manage builds"}
	var force, all bool
	prune := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove build cache", Args: cobra.NoArgs}
	prune.RunE = a.runE(func([]string) error {
		if !force && !confirm("WARNING! This will remove all dangling build cache.") {
			return nil
		}
		var rep struct {
			CachesDeleted  []string
			SpaceReclaimed uint64
		}
		if err := a.c.JSON(a.ctx, http.MethodPost, "/build/prune", nil, nil, &rep); err != nil {
			return apiError(err, 1)
		}
		printPruned("Deleted build cache objects:", rep.CachesDeleted, rep.SpaceReclaimed)
		return nil
	})
	prune.Flags().BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	// tent's cache is only ever the builds' own: --all removes the same.
	prune.Flags().BoolVarP(&all, "all", "a", false, "remove all unused build cache, not just dangling ones")
	cmd.AddCommand(prune)
	return cmd
}
