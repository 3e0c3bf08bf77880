// Package copier copies files out of and into a container's file system
// (docker cp, the /containers/{id}/archive endpoints).
//
// The container is not trusted: while a copy runs it may swap any
// directory of the path for a symlink to "/" (CVE-2018-15664). So no path
// of the container's is ever resolved by the daemon. The daemon opens the
// container's root (through its task, task.RootOpener, while it runs: the
// init's root, with its volumes and binds) and hands that descriptor to a
// helper process, which
// chroots into it before it reads a path: from then on every symlink and
// ".." resolves inside the container's root, whatever the container does.
// The helper is the daemon's binary (`tentd copier OP PATH`): one process
// start per copy.
package copier

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/errdefs"
	"golang.org/x/sys/unix"
)

// Copier runs copies with the helper binary Bin (which calls Main for its
// "copier" command).
type Copier struct{ Bin string }

// PutOptions are the query parameters of PUT /containers/{id}/archive.
type PutOptions struct {
	// NoOverwriteDirNonDir: an error rather than a directory replaced by
	// a file or the reverse.
	NoOverwriteDirNonDir bool
	// CopyUIDGID: the container's user (Config.User, resolved in its
	// /etc/passwd and /etc/group) owns what is copied in, else the
	// archive's owners stay.
	CopyUIDGID bool
	User       string
}

// reply is the helper's first line on stdout.
type reply struct {
	Stat  *container.PathStat `json:"stat,omitempty"`
	Error string              `json:"error,omitempty"`
	Class string              `json:"class,omitempty"`
}

func (r reply) err() error {
	if r.Error == "" {
		return nil
	}
	return errdefs.WithClass(errors.New(r.Error), r.Class)
}

// helper is a running helper process.
type helper struct {
	cmd    *exec.Cmd
	outR   *os.File
	out    *bufio.Reader
	fed    chan struct{} // closed when stdin is copied, as exec.Cmd's Wait waits for
	stderr strings.Builder
}

// pipeSize is the size of the pipes to and from a helper: the Linux
// default (64 KiB) wakes each side 16 times a megabyte, and made the pipe
// a third of a copy's time.
const pipeSize = 1 << 20

func (c Copier) start(root *os.File, stdin io.Reader, args ...string) (*helper, error) {
	h := &helper{cmd: exec.Command(c.Bin, append([]string{"copier"}, args...)...)}
	h.cmd.ExtraFiles = []*os.File{root}
	h.cmd.Stderr = &h.stderr
	outR, outW, err := bigPipe()
	if err != nil {
		return nil, err
	}
	h.cmd.Stdout = outW
	var inW *os.File
	if stdin != nil {
		var inR *os.File
		if inR, inW, err = bigPipe(); err != nil {
			outR.Close()
			outW.Close()
			return nil, err
		}
		h.cmd.Stdin = inR
		defer inR.Close()
	}
	err = h.cmd.Start()
	outW.Close()
	if err != nil {
		outR.Close()
		if inW != nil {
			inW.Close()
		}
		return nil, err
	}
	h.outR = outR
	h.out = bufio.NewReaderSize(outR, pipeSize)
	if inW != nil {
		h.fed = make(chan struct{})
		go func() {
			defer close(h.fed)
			// A helper that fails stops reading: the copy ends with EPIPE.
			_, _ = io.CopyBuffer(inW, stdin, make([]byte, pipeSize))
			inW.Close()
		}()
	}
	return h, nil
}

func bigPipe() (r, w *os.File, err error) {
	if r, w, err = os.Pipe(); err != nil {
		return nil, nil, err
	}
	_, _ = unix.FcntlInt(w.Fd(), unix.F_SETPIPE_SZ, pipeSize) // a smaller pipe still works
	return r, w, nil
}

// reply reads the helper's first line.
func (h *helper) reply() (reply, error) {
	r, err := readReply(h.out)
	if err != nil {
		return r, h.wait(err)
	}
	return r, nil
}

func readReply(out *bufio.Reader) (reply, error) {
	var r reply
	line, err := out.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &r)
	}
	if err != nil {
		return r, fmt.Errorf("copy helper: %w", err)
	}
	return r, nil
}

// Answer reads the answer of a helper started elsewhere (a VM's guest
// runs it: Main is linked into its agent) from its output: the error it
// reports (nil: it went on), or why no answer could be read.
func Answer(out *bufio.Reader) (reported, err error) {
	r, err := readReply(out)
	if err != nil {
		return nil, err
	}
	return r.err(), nil
}

// wait reaps the helper; a failure after a good reply is its stderr.
func (h *helper) wait(err error) error {
	werr := h.cmd.Wait()
	h.outR.Close()
	if h.fed != nil {
		<-h.fed
	}
	if err == nil && werr != nil {
		err = fmt.Errorf("copy: %v: %s", werr, strings.TrimSpace(h.stderr.String()))
	}
	return err
}

// Stat describes path in root (HEAD /containers/{id}/archive).
func (c Copier) Stat(root *os.File, path string) (container.PathStat, error) {
	h, err := c.start(root, nil, "stat", path)
	if err != nil {
		return container.PathStat{}, err
	}
	r, err := h.reply()
	if err != nil {
		return container.PathStat{}, err
	}
	if err := h.wait(r.err()); err != nil {
		return container.PathStat{}, err
	}
	return *r.Stat, nil
}

// Get describes path in root and streams it as a tar (GET
// /containers/{id}/archive). Close the stream to reap the helper; its
// error is a failure half-way.
func (c Copier) Get(root *os.File, path string) (container.PathStat, io.ReadCloser, error) {
	h, err := c.start(root, nil, "get", path)
	if err != nil {
		return container.PathStat{}, nil, err
	}
	r, err := h.reply()
	if err != nil {
		return container.PathStat{}, nil, err
	}
	if err := r.err(); err != nil {
		return container.PathStat{}, nil, h.wait(err)
	}
	return *r.Stat, &stream{h: h}, nil
}

type stream struct{ h *helper }

func (s *stream) Read(p []byte) (int, error) { return s.h.out.Read(p) }

func (s *stream) Close() error {
	_, _ = io.Copy(io.Discard, s.h.out) // a reader that stops early
	return s.h.wait(nil)
}

// PutArgs are the helper's arguments (Main's) for a put into dir.
func PutArgs(dir string, o PutOptions) []string {
	args := []string{"put", dir}
	if o.NoOverwriteDirNonDir {
		args = append(args, "--no-overwrite-dir-non-dir")
	}
	if o.CopyUIDGID && o.User != "" {
		args = append(args, "--owner", o.User)
	}
	return args
}

// Put extracts the tar r into the directory dir of root (PUT
// /containers/{id}/archive).
func (c Copier) Put(root *os.File, dir string, r io.Reader, o PutOptions) error {
	h, err := c.start(root, r, PutArgs(dir, o)...)
	if err != nil {
		return err
	}
	rep, err := h.reply()
	if err != nil {
		return err
	}
	return h.wait(rep.err())
}
