package server

import (
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

func (s *Server) volumeRoutes() {
	m := s.mux
	m.HandleFunc("GET /volumes", s.volumeList)
	m.HandleFunc("POST /volumes/create", s.volumeCreate)
	m.HandleFunc("POST /volumes/prune", s.volumePrune)
	m.HandleFunc("GET /volumes/{name}", s.volumeInspect)
	m.HandleFunc("DELETE /volumes/{name}", s.volumeRemove)
}

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := s.d.VolumeList(f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request) {
	var req volume.CreateRequest
	if err := decode(r, &req, true); err != nil {
		writeError(w, err)
		return
	}
	v, err := s.d.VolumeCreate(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request) {
	v, err := s.d.VolumeInspect(r.PathValue("name"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request) {
	if err := s.d.VolumeRemove(r.PathValue("name"), boolValue(r, "force")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request) {
	pf, f, err := pruneFilter(r, "all", "label", "label!")
	if err != nil {
		writeError(w, err)
		return
	}
	// Before API 1.42 a prune removed every unused volume, named ones
	// too; the all filter came with 1.42.
	all := versionLess(apiVersion(r), "1.42") || len(f["all"]) > 0 && (f["all"][0] == "true" || f["all"][0] == "1")
	report, err := s.d.VolumePrune(all, pf)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, report)
}
