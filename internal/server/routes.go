package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	goruntime "runtime"
	"slices"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/eventbus"
	"golang.org/x/sys/unix"
)

func (s *Server) routes() {
	m := s.mux
	// Profiles, as dockerd serves them in debug mode (--log-level debug).
	if s.log.Enabled(context.Background(), slog.LevelDebug) {
		m.HandleFunc("GET /debug/pprof/", pprof.Index)
		m.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		m.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		m.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		m.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	m.HandleFunc("GET /_ping", s.ping)
	m.HandleFunc("POST /auth", s.auth)
	m.HandleFunc("HEAD /_ping", s.ping)
	m.HandleFunc("GET /version", s.version)
	m.HandleFunc("GET /info", s.info)
	m.HandleFunc("GET /events", s.events)

	m.HandleFunc("POST /containers/create", s.containerCreate)
	m.HandleFunc("GET /containers/json", s.containerList)
	m.HandleFunc("GET /containers/{id}/json", s.containerInspect)
	m.HandleFunc("POST /containers/{id}/start", s.containerStart)
	m.HandleFunc("POST /containers/{id}/checkpoints", s.checkpointCreate)
	m.HandleFunc("GET /containers/{id}/checkpoints", s.checkpointList)
	m.HandleFunc("DELETE /containers/{id}/checkpoints/{name}", s.checkpointDelete)
	m.HandleFunc("POST /containers/{id}/stop", s.containerStop)
	m.HandleFunc("POST /containers/{id}/restart", s.containerRestart)
	m.HandleFunc("POST /containers/{id}/kill", s.containerKill)
	m.HandleFunc("POST /containers/{id}/pause", s.containerPause(true))
	m.HandleFunc("POST /containers/{id}/unpause", s.containerPause(false))
	m.HandleFunc("POST /containers/{id}/wait", s.containerWait)
	m.HandleFunc("POST /containers/{id}/attach", s.containerAttach)
	m.HandleFunc("POST /containers/{id}/resize", s.containerResize)
	m.HandleFunc("POST /containers/{id}/rename", s.containerRename)
	m.HandleFunc("GET /containers/{id}/logs", s.containerLogs)
	m.HandleFunc("DELETE /containers/{id}", s.containerRemove)
	m.HandleFunc("POST /containers/prune", s.containerPrune)
	m.HandleFunc("GET /containers/{id}/changes", s.containerChanges)
	m.HandleFunc("GET /containers/{id}/export", s.containerExport)
	m.HandleFunc("POST /commit", s.commit)
	m.HandleFunc("GET /containers/{id}/stats", s.containerStats)
	m.HandleFunc("GET /system/df", s.systemDF)
	m.HandleFunc("POST /containers/{id}/update", s.containerUpdate)
	m.HandleFunc("HEAD /containers/{id}/archive", s.archiveHead)
	m.HandleFunc("GET /containers/{id}/archive", s.archiveGet)
	m.HandleFunc("PUT /containers/{id}/archive", s.archivePut)
	s.volumeRoutes()
	s.networkRoutes()
	m.HandleFunc("GET /containers/{id}/top", s.containerTop)
	m.HandleFunc("POST /containers/{id}/exec", s.execCreate)
	m.HandleFunc("POST /exec/{id}/start", s.execStart)
	m.HandleFunc("GET /exec/{id}/json", s.execInspect)
	m.HandleFunc("POST /exec/{id}/resize", s.execResize)

	m.HandleFunc("POST /build", s.build)
	m.HandleFunc("POST /build/prune", s.buildPrune)
	m.HandleFunc("GET /images/json", s.imageList)
	m.HandleFunc("POST /images/create", s.imageCreate)
	m.HandleFunc("POST /images/load", s.imageLoad)
	m.HandleFunc("GET /images/get", s.imageSave)
	m.HandleFunc("POST /images/prune", s.imagePrune)
	// Image names contain slashes, so the action is the last element.
	m.HandleFunc("GET /images/{rest...}", s.imageGet)
	m.HandleFunc("POST /images/{rest...}", s.imagePost)
	m.HandleFunc("DELETE /images/{rest...}", s.imageRemove)
}

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
	w.Header().Set("Pragma", "no-cache")
	// The legacy builder's protocol (POST /build); BuildKit's sessions are not served.
	w.Header().Set("Builder-Version", "1")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Length", "0")
		return
	}
	io.WriteString(w, "OK")
}

func kernelVersion() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return ""
	}
	return unix.ByteSliceToString(u.Release[:])
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"Platform":      map[string]string{"Name": "tent"},
		"Components":    []map[string]any{{"Name": "Engine", "Version": s.Version, "Details": map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": goruntime.GOARCH, "KernelVersion": kernelVersion(), "GoVersion": goruntime.Version(), "Experimental": strconv.FormatBool(s.Experimental)}}},
		"Version":       s.Version,
		"ApiVersion":    APIVersion,
		"MinAPIVersion": MinAPIVersion,
		"GoVersion":     goruntime.Version(),
		"Os":            "linux",
		"Arch":          goruntime.GOARCH,
		"KernelVersion": kernelVersion(),
		"BuildTime":     "",
		"Experimental":  s.Experimental,
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	info, err := s.d.Info()
	if err != nil {
		writeError(w, err)
		return
	}
	info.ServerVersion = s.Version
	info.ExperimentalBuild = s.Experimental
	writeVersioned(w, r, info, bridgeNf, commitExpected)
}

func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	since, err := parseTime(q.Get("since"))
	if err != nil {
		writeError(w, err)
		return
	}
	until, err := parseTime(q.Get("until"))
	if err != nil {
		writeError(w, err)
		return
	}
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	past, ch, cancel := s.d.Subscribe(since)
	defer cancel()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	fw := newFlushWriter(w)
	fw.f.Flush()
	enc := json.NewEncoder(fw)
	send := func(m events.Message) bool {
		if !until.IsZero() && m.TimeNano > until.UnixNano() {
			return false
		}
		if eventbus.Matches(m, f) {
			return enc.Encode(m) == nil
		}
		return true
	}
	for _, m := range past {
		if !send(m) {
			return
		}
	}
	var timeout <-chan time.Time
	if !until.IsZero() {
		timeout = time.After(time.Until(until))
	}
	for {
		select {
		case m := <-ch:
			if !send(m) {
				return
			}
		case <-timeout:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// pruneFilter reads a prune's filters, refusing any but allowed ones.
func pruneFilter(r *http.Request, allowed ...string) (backend.PruneFilter, map[string][]string, error) {
	var pf backend.PruneFilter
	f, err := filters(r)
	if err != nil {
		return pf, nil, err
	}
	for k := range f {
		if !slices.Contains(allowed, k) {
			return pf, nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if u := f["until"]; len(u) > 0 {
		if pf.Until, err = parseTime(u[0]); err != nil {
			return pf, nil, err
		}
	}
	pf.Labels, pf.NotLabels = f["label"], f["label!"]
	return pf, f, nil
}

// parseTime reads docker's time parameters: unix seconds (with optional
// fraction) or RFC 3339.
func parseTime(v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return time.Now().Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("invalid time %q: %w", v, errdefs.ErrInvalidArgument)
}

// noContent answers an action: 204, or the error.
func noContent(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// noContentOK answers 200 with no body, or the error.
func noContentOK(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
}
