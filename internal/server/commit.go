package server

import (
	"net/http"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/backend"
)

func (s *Server) containerChanges(w http.ResponseWriter, r *http.Request) {
	list, err := s.d.Changes(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// containerExport streams the container's file system as a tar; an error
// once the tar has begun can only cut it short.
func (s *Server) containerExport(w http.ResponseWriter, r *http.Request) {
	if _, err := s.d.Inspect(r.PathValue("id"), false); err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.d.Export(r.PathValue("id"), newFlushWriter(w)); err != nil {
		s.log.Error("export", "container", r.PathValue("id"), "err", err)
		panic(http.ErrAbortHandler) // the client sees a truncated stream, not a valid tar
	}
}

// commit answers POST /commit: 201 with the new image's ID.
func (s *Server) commit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := backend.CommitOptions{Repo: q.Get("repo"), Tag: q.Get("tag"), Comment: q.Get("comment"),
		Author: q.Get("author"), Pause: q.Get("pause") == "" || boolValue(r, "pause"), Changes: q["changes"]}
	var cfg container.Config
	if r.ContentLength != 0 {
		if err := decode(r, &cfg, true); err != nil {
			writeError(w, err)
			return
		}
		o.Config = &cfg
	}
	id, err := s.d.Commit(q.Get("container"), o)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"Id": id.String()})
}
