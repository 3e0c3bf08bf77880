// Resources: what containers use (stats, system df) and may use (update).

package server

import (
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/errdefs"
)

// containerStats is GET /containers/{id}/stats: JSON samples, one per
// line, streamed (the default) or one.
func (s *Server) containerStats(w http.ResponseWriter, r *http.Request) {
	stream := r.URL.Query().Get("stream") == "" || boolValue(r, "stream")
	oneShot := !versionLess(apiVersion(r), "1.41") && boolValue(r, "one-shot")
	if stream && oneShot {
		writeError(w, fmt.Errorf("cannot have stream=true and one-shot=true: %w", errdefs.ErrInvalidArgument))
		return
	}
	started := false
	var enc *json.Encoder
	err := s.d.Stats(r.Context(), r.PathValue("id"), stream, oneShot, func(st *container.StatsResponse) error {
		if !started {
			started = true
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusOK)
			enc = json.NewEncoder(newFlushWriter(w))
		}
		return enc.Encode(st)
	})
	if err != nil && !started {
		writeError(w, err)
	}
}

// containerUpdate is POST /containers/{id}/update.
func (s *Server) containerUpdate(w http.ResponseWriter, r *http.Request) {
	var u container.UpdateConfig
	if err := decode(r, &u, false); err != nil {
		writeError(w, err)
		return
	}
	updateCompat(apiVersion(r), &u)
	warnings, err := s.d.Update(r.PathValue("id"), u)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, container.UpdateResponse{Warnings: warnings})
}

// systemDF is GET /system/df (type=container|image|volume|build-cache,
// repeatable).
func (s *Server) systemDF(w http.ResponseWriter, r *http.Request) {
	du, err := s.d.SystemDF(r.URL.Query()["type"])
	if err != nil {
		writeError(w, err)
		return
	}
	writeVersioned(w, r, du, dfVirtualSize)
}
