package server

import (
	"fmt"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/errdefs"
)

func (s *Server) execCreate(w http.ResponseWriter, r *http.Request) {
	var req container.ExecCreateRequest
	if err := decode(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	id, err := s.d.ExecCreate(r.PathValue("id"), req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, container.ExecCreateResponse{ID: id})
}

func (s *Server) execStart(w http.ResponseWriter, r *http.Request) {
	var req container.ExecStartRequest
	if err := decode(r, &req, true); err != nil {
		writeError(w, err)
		return
	}
	id := r.PathValue("id")
	if _, err := s.d.ExecInspect(id); err != nil { // a missing exec gets a JSON error, not a stream
		writeError(w, err)
		return
	}
	if req.Detach {
		noContentOK(w, s.d.ExecStart(id, true, false, nil, nil, nil))
		return
	}
	// The stream's form is the start request's Tty, as dockerd's; the
	// process has a terminal if its create asked for one.
	conn, rw, err := hijack(w, r, streamType(r, req.Tty))
	if err != nil {
		return
	}
	defer conn.Close()
	if err := s.d.ExecStart(id, false, req.Tty, rw.Reader, conn, func() { closeWrite(conn) }); err != nil {
		fmt.Fprintf(conn, "Error: %s\n", message(err))
	}
}

func (s *Server) execInspect(w http.ResponseWriter, r *http.Request) {
	e, err := s.d.ExecInspect(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, e)
}

func (s *Server) execResize(w http.ResponseWriter, r *http.Request) {
	h, wd, err := termSize(r)
	if err == nil {
		err = s.d.ExecResize(r.PathValue("id"), h, wd)
	}
	noContentOK(w, err)
}

// termSize reads the h and w parameters of a resize.
func termSize(r *http.Request) (uint16, uint16, error) {
	h, err1 := strconv.ParseUint(r.URL.Query().Get("h"), 10, 16)
	w, err2 := strconv.ParseUint(r.URL.Query().Get("w"), 10, 16)
	if err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("invalid terminal size: %w", errdefs.ErrInvalidArgument)
	}
	return uint16(h), uint16(w), nil
}
