package server

import (
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/errdefs"
)

func (s *Server) networkRoutes() {
	m := s.mux
	m.HandleFunc("GET /networks", s.networkList)
	m.HandleFunc("POST /networks/create", s.networkCreate)
	m.HandleFunc("POST /networks/prune", s.networkPrune)
	m.HandleFunc("GET /networks/{id}", s.networkInspect)
	m.HandleFunc("DELETE /networks/{id}", s.networkRemove)
	m.HandleFunc("POST /networks/{id}/connect", s.networkConnect)
	m.HandleFunc("POST /networks/{id}/disconnect", s.networkDisconnect)
}

func (s *Server) networkList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := s.d.NetworkList(f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request) {
	var req network.CreateRequest
	if err := decode(r, &req, true); err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.d.NetworkCreate(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request) {
	// Every network of tent's is local; verbose adds only swarm's details.
	if sc := r.URL.Query().Get("scope"); sc != "" && sc != "local" {
		writeError(w, fmt.Errorf("network %s not found: %w", r.PathValue("id"), errdefs.ErrNotFound))
		return
	}
	n, err := s.d.NetworkInspect(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, n)
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request) {
	if err := s.d.NetworkRemove(r.PathValue("id")); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request) {
	pf, _, err := pruneFilter(r, "until", "label", "label!")
	if err != nil {
		writeError(w, err)
		return
	}
	deleted, err := s.d.NetworkPrune(pf)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, network.PruneReport{NetworksDeleted: deleted})
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request) {
	var req network.ConnectRequest
	if err := decode(r, &req, true); err != nil {
		writeError(w, err)
		return
	}
	if err := s.d.NetworkConnect(r.PathValue("id"), req.Container, req.EndpointConfig); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request) {
	var req network.DisconnectRequest
	if err := decode(r, &req, true); err != nil {
		writeError(w, err)
		return
	}
	if err := s.d.NetworkDisconnect(r.PathValue("id"), req.Container, req.Force); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
