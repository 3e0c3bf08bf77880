package cli

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/go-archive"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	tarchive "github.com/tent-project/tent/internal/archive"
	"github.com/tent-project/tent/internal/client"
	"golang.org/x/term"
)

// cp follows the docker CLI's client side of a copy (which decides, from
// the stats of both ends, what to rename and where to extract) with the
// same library, moby/go-archive, so that paths behave as with docker.

func cpCmd(a *app) *cobra.Command {
	var follow, archiveMode, quiet bool
	cmd := &cobra.Command{
		Use:   "cp [OPTIONS] CONTAINER:SRC_PATH DEST_PATH|-\n  tent cp [OPTIONS] SRC_PATH|- CONTAINER:DEST_PATH",
		Short: "Copy files/folders between a container and the local filesystem",
		Args:  cobra.ExactArgs(2),
	}
	cmd.RunE = a.runE(func(args []string) error {
		if !cmd.Flag("quiet").Changed {
			quiet = !term.IsTerminal(int(os.Stderr.Fd()))
		}
		srcCtr, src := splitCopyArg(args[0])
		dstCtr, dst := splitCopyArg(args[1])
		switch {
		case src == "":
			return statusError{code: 1, msg: "source can not be empty"}
		case dst == "":
			return statusError{code: 1, msg: "destination can not be empty"}
		case srcCtr != "" && dstCtr != "":
			return statusError{code: 1, msg: "copying between containers is not supported"}
		case srcCtr != "":
			return a.copyFrom(srcCtr, src, dst, follow, quiet)
		case dstCtr != "":
			return a.copyTo(dstCtr, dst, src, follow, archiveMode, quiet)
		}
		return statusError{code: 1, msg: "must specify at least one container source"}
	})
	fl := cmd.Flags()
	fl.BoolVarP(&follow, "follow-link", "L", false, "Always follow symbol link in SRC_PATH")
	fl.BoolVarP(&archiveMode, "archive", "a", false, "Archive mode (copy all uid/gid information)")
	fl.BoolVarP(&quiet, "quiet", "q", false, "Suppress progress output during copy. Progress output is automatically suppressed if no terminal is attached")
	return cmd
}

// splitCopyArg splits CONTAINER:PATH; a path that starts with "/" or "."
// is local even with a colon in it, as in docker.
func splitCopyArg(arg string) (ctr, path string) {
	if filepath.IsAbs(arg) || strings.HasPrefix(arg, ".") {
		return "", arg
	}
	if c, p, ok := strings.Cut(arg, ":"); ok {
		return c, p
	}
	return "", arg
}

// localPath is path absolute, its trailing "/" or "/." kept.
func localPath(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	return archive.PreserveTrailingDotOrSeparator(abs, path), nil
}

// statPath is HEAD /containers/{id}/archive.
func (a *app) statPath(ctr, path string) (container.PathStat, error) {
	resp, err := a.c.Do(a.ctx, http.MethodHead, "/containers/"+ctr+"/archive", url.Values{"path": {path}}, nil, "")
	if err != nil {
		return container.PathStat{}, err
	}
	resp.Body.Close()
	return decodePathStat(resp.Header)
}

func decodePathStat(h http.Header) (container.PathStat, error) {
	var st container.PathStat
	b, err := base64.StdEncoding.DecodeString(h.Get("X-Docker-Container-Path-Stat"))
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	return st, err
}

func (a *app) copyFrom(ctr, src, dst string, follow, quiet bool) error {
	if dst != "-" {
		var err error
		if dst, err = localPath(dst); err != nil {
			return err
		}
		// The parent must be a directory that exists, as docker checks.
		if parent := filepath.Dir(strings.TrimSuffix(dst, "/.")); !isDir(parent) {
			return statusError{code: 1, msg: fmt.Sprintf("invalid output path: directory %q does not exist", parent)}
		}
	}
	rebase := ""
	if follow {
		if st, err := a.statPath(ctr, src); err == nil && st.Mode&os.ModeSymlink != 0 {
			target := st.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := archive.SplitPathDirEntry(src)
				target = filepath.Join(parent, target)
			}
			src, rebase = archive.GetRebaseName(src, target)
		}
	}
	resp, err := a.c.Do(a.ctx, http.MethodGet, "/containers/"+ctr+"/archive", url.Values{"path": {src}}, nil, "")
	if err != nil {
		return apiError(err, 1)
	}
	defer resp.Body.Close()
	if dst == "-" {
		_, err := io.Copy(os.Stdout, resp.Body)
		return err
	}
	st, err := decodePathStat(resp.Header)
	if err != nil {
		return err
	}
	counted := &countingReader{r: resp.Body}
	var content io.Reader = counted
	if rebase != "" {
		_, base := archive.SplitPathDirEntry(src)
		content = archive.RebaseArchiveEntries(counted, base, rebase)
	}
	info := archive.CopyInfo{Path: src, Exists: true, IsDir: st.Mode.IsDir(), RebaseName: rebase}
	if err := extractCopy(content, info, dst); err != nil {
		return statusError{code: 1, msg: err.Error()}
	}
	if !quiet {
		size := counted.n
		if !st.Mode.IsDir() {
			size = st.Size
		}
		fmt.Fprintf(os.Stderr, "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(size), 3), dst)
	}
	return nil
}

func (a *app) copyTo(ctr, dst, src string, follow, owners, quiet bool) error {
	if src != "-" {
		var err error
		if src, err = localPath(src); err != nil {
			return err
		}
	}
	// What the destination is decides where the archive goes and under
	// which name; a destination that cannot be stat'ed is taken to be a
	// new name in a directory that exists (the extraction says if not).
	dstInfo := archive.CopyInfo{Path: dst}
	if st, err := a.statPath(ctr, dst); err == nil {
		if st.Mode&os.ModeSymlink != 0 {
			target := st.LinkTarget
			if !filepath.IsAbs(target) {
				parent, _ := archive.SplitPathDirEntry(dst)
				target = filepath.Join(parent, target)
			}
			dstInfo.Path = target
			st, err = a.statPath(ctr, target)
		}
		if err == nil {
			if !st.Mode.IsDir() && !st.Mode.IsRegular() {
				return statusError{code: 1, msg: fmt.Sprintf("destination %q must be a directory or a regular file", ctr+":"+dst)}
			}
			dstInfo.Exists, dstInfo.IsDir = true, st.Mode.IsDir()
		}
	}
	var content io.Reader
	extractTo := dstInfo.Path
	if src == "-" {
		if !dstInfo.IsDir {
			return statusError{code: 1, msg: fmt.Sprintf("destination %q must be a directory", ctr+":"+dst)}
		}
		content = os.Stdin
	} else {
		srcInfo, err := archive.CopyInfoSourcePath(src, follow)
		if err != nil {
			return statusError{code: 1, msg: err.Error()}
		}
		if dir, name, ok := directCopy(srcInfo, dstInfo); ok {
			// tent's archiver names the entries as they will be (no
			// second pass renames them) and reads each file at once.
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(tarchive.WriteTree(pw, srcInfo.Path, name, nil)) }()
			defer pr.Close()
			extractTo, content = dir, pr
		} else {
			tarred, err := archive.TarResource(srcInfo)
			if err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			defer tarred.Close()
			dir, prepared, err := archive.PrepareArchiveCopy(tarred, srcInfo, dstInfo)
			if err != nil {
				return statusError{code: 1, msg: err.Error()}
			}
			defer prepared.Close()
			extractTo, content = dir, prepared
		}
	}
	counted := &countingReader{r: content}
	q := url.Values{"path": {extractTo}, "noOverwriteDirNonDir": {"true"}}
	if owners {
		q.Set("copyUIDGID", "true")
	}
	resp, err := a.c.Do(a.ctx, http.MethodPut, "/containers/"+ctr+"/archive", q, client.Bulk(counted), "application/x-tar")
	if err != nil {
		return apiError(err, 1)
	}
	resp.Body.Close()
	if !quiet {
		fmt.Fprintf(os.Stderr, "Successfully copied %s to %s\n", units.HumanSizeWithPrecision(float64(counted.n), 3), ctr+":"+dst)
	}
	return nil
}

// directCopy tells where a copy of src goes (dir) under which name, as
// archive.PrepareArchiveCopy decides it: into an existing directory under
// src's own name, or as the destination (a directory copied to a new
// name, a file onto an existing file). Any other case (a source named
// "dir/.", a file to a path that is not there, what PrepareArchiveCopy
// refuses) is its own, through moby's archiver.
func directCopy(src, dst archive.CopyInfo) (dir, name string, ok bool) {
	usable := func(n string) bool { return n != "" && n != "." && n != "/" }
	if src.RebaseName != "" {
		return "", "", false
	}
	switch {
	case dst.Exists && dst.IsDir:
		_, name = archive.SplitPathDirEntry(src.Path)
		return dst.Path, name, usable(name)
	case dst.Exists && src.IsDir, !dst.Exists && !src.IsDir:
		return "", "", false
	}
	dir, name = archive.SplitPathDirEntry(dst.Path)
	return dir, name, usable(name)
}

// extractCopy extracts the archive of src (GET /containers/{id}/archive)
// at dst as docker's CLI does (archive.CopyTo: into dst if it is a
// directory, else as dst in its parent), with tent's extraction, which
// renames the entries as it goes rather than in a second pass, and
// copies file content through one buffer. The files are the caller's,
// as docker cp makes them. What CopyTo refuses it still refuses.
func extractCopy(content io.Reader, src archive.CopyInfo, dst string) error {
	dstInfo, err := archive.CopyInfoDestinationPath(dst)
	if err != nil {
		return err
	}
	_, srcBase := archive.SplitPathDirEntry(src.Path)
	if src.RebaseName != "" {
		srcBase = src.RebaseName
	}
	o := tarchive.ExtractOptions{Under: dstInfo.Path, NoOverwriteDirNonDir: true, Owner: &[2]int{os.Getuid(), os.Getgid()}}
	switch {
	case dstInfo.Exists && dstInfo.IsDir:
	case dstInfo.Exists && src.IsDir, !dstInfo.Exists && !src.IsDir && strings.HasSuffix(dstInfo.Path, "/"):
		return archive.CopyTo(content, src, dst) // its error
	default:
		dir, dstBase := archive.SplitPathDirEntry(dstInfo.Path)
		if srcBase == "" || srcBase == "." || srcBase == "/" || dstBase == "." {
			return archive.CopyTo(content, src, dst)
		}
		o.Under, o.Rename = dir, [2]string{srcBase, dstBase}
	}
	return tarchive.Extract("/", content, o)
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
