package server

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/errdefs"
)

// The archive endpoints (docker cp): a path's stat travels base64-encoded
// JSON in the X-Docker-Container-Path-Stat header.

const pathStatHeader = "X-Docker-Container-Path-Stat"

// archivePath is the request's path parameter, which must be there.
func archivePath(w http.ResponseWriter, r *http.Request) (string, bool) {
	p := r.URL.Query().Get("path")
	if p == "" {
		writeError(w, fmt.Errorf("path is required: %w", errdefs.ErrInvalidArgument))
		return "", false
	}
	return p, true
}

func setPathStat(w http.ResponseWriter, st container.PathStat) {
	b, _ := json.Marshal(st)
	w.Header().Set(pathStatHeader, base64.StdEncoding.EncodeToString(b))
}

func (s *Server) archiveHead(w http.ResponseWriter, r *http.Request) {
	p, ok := archivePath(w, r)
	if !ok {
		return
	}
	st, err := s.d.ArchiveStat(r.PathValue("id"), p)
	if err != nil {
		writeError(w, err)
		return
	}
	setPathStat(w, st)
	w.WriteHeader(http.StatusOK)
}

func (s *Server) archiveGet(w http.ResponseWriter, r *http.Request) {
	p, ok := archivePath(w, r)
	if !ok {
		return
	}
	st, tr, err := s.d.ArchiveGet(r.PathValue("id"), p)
	if err != nil {
		writeError(w, err)
		return
	}
	setPathStat(w, st)
	w.Header().Set("Content-Type", "application/x-tar")
	w.WriteHeader(http.StatusOK)
	// Large writes: each is a chunk, and one write to the socket.
	_, err = io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{tr}, make([]byte, 1<<20))
	if cerr := tr.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		s.log.Error("archive", "container", r.PathValue("id"), "path", p, "err", err)
		panic(http.ErrAbortHandler) // a truncated stream, not a valid tar
	}
}

func (s *Server) archivePut(w http.ResponseWriter, r *http.Request) {
	p, ok := archivePath(w, r)
	if !ok {
		return
	}
	o := copier.PutOptions{NoOverwriteDirNonDir: boolValue(r, "noOverwriteDirNonDir"), CopyUIDGID: boolValue(r, "copyUIDGID")}
	if err := s.d.ArchivePut(r.PathValue("id"), p, r.Body, o); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
