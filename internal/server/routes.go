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
	"strings"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/tent-project/tent/internal/daemon"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/eventbus"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/streams"
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
	s.volumeRoutes()
	m.HandleFunc("GET /containers/{id}/top", s.containerTop)
	m.HandleFunc("POST /containers/{id}/exec", s.execCreate)
	m.HandleFunc("POST /exec/{id}/start", s.execStart)
	m.HandleFunc("GET /exec/{id}/json", s.execInspect)
	m.HandleFunc("POST /exec/{id}/resize", s.execResize)

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
		"Components":    []map[string]any{{"Name": "Engine", "Version": s.Version, "Details": map[string]string{"ApiVersion": APIVersion, "MinAPIVersion": MinAPIVersion, "Os": "linux", "Arch": goruntime.GOARCH, "KernelVersion": kernelVersion(), "GoVersion": goruntime.Version()}}},
		"Version":       s.Version,
		"ApiVersion":    APIVersion,
		"MinAPIVersion": MinAPIVersion,
		"GoVersion":     goruntime.Version(),
		"Os":            "linux",
		"Arch":          goruntime.GOARCH,
		"KernelVersion": kernelVersion(),
		"BuildTime":     "",
	})
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	info, err := s.d.Info()
	if err != nil {
		writeError(w, err)
		return
	}
	info.ServerVersion = s.Version
	writeJSON(w, http.StatusOK, info)
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
func pruneFilter(r *http.Request, allowed ...string) (daemon.PruneFilter, map[string][]string, error) {
	var pf daemon.PruneFilter
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

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) {
	var req container.CreateRequest
	if err := decode(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	resp, err := s.d.Create(r.URL.Query().Get("name"), r.URL.Query().Get("platform"), req.Config, req.HostConfig)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusCreated, resp)
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	list, err := s.d.List(daemon.ListOpts{All: boolValue(r, "all"), Limit: limit, Filters: f})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) {
	c, err := s.d.Inspect(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// noContent answers an action: 204, or the error.
func noContent(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func timeoutParam(r *http.Request) (*int, error) {
	v := r.URL.Query().Get("t")
	if v == "" {
		v = r.URL.Query().Get("timeout")
	}
	if v == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return nil, fmt.Errorf("invalid value for t: %q: %w", v, errdefs.ErrInvalidArgument)
	}
	return &n, nil
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request) {
	noContent(w, s.d.Start(r.PathValue("id")))
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) {
	t, err := timeoutParam(r)
	if err == nil {
		err = s.d.Stop(r.PathValue("id"), r.URL.Query().Get("signal"), t)
	}
	noContent(w, err)
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) {
	t, err := timeoutParam(r)
	if err == nil {
		err = s.d.Restart(r.PathValue("id"), t)
	}
	noContent(w, err)
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request) {
	noContent(w, s.d.Kill(r.PathValue("id"), r.URL.Query().Get("signal")))
}

func (s *Server) containerPause(pause bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		noContent(w, s.d.Pause(r.PathValue("id"), pause))
	}
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request) {
	noContent(w, s.d.Rename(r.PathValue("id"), r.URL.Query().Get("name")))
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request) {
	h, wd, err := termSize(r)
	if err == nil {
		err = s.d.Resize(r.PathValue("id"), h, wd)
	}
	noContentOK(w, err)
}

func (s *Server) containerWait(w http.ResponseWriter, r *http.Request) {
	cond := container.WaitCondition(r.URL.Query().Get("condition"))
	switch cond {
	case "", container.WaitConditionNotRunning, container.WaitConditionNextExit, container.WaitConditionRemoved:
	default:
		writeError(w, fmt.Errorf("invalid condition: %q: %w", cond, errdefs.ErrInvalidArgument))
		return
	}
	headerSent := false
	resp, err := s.d.Wait(r.Context(), r.PathValue("id"), cond, func() {
		// The client learns that its wait is registered before it starts
		// the container.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		headerSent = true
	})
	if err != nil {
		if !headerSent {
			writeError(w, err)
		}
		return
	}
	json.NewEncoder(w).Encode(resp)
}

func (s *Server) containerAttach(w http.ResponseWriter, r *http.Request) {
	if !boolValue(r, "stream") && !boolValue(r, "logs") {
		writeError(w, fmt.Errorf("either the stream or the logs parameter must be set: %w", errdefs.ErrInvalidArgument))
		return
	}
	keys, err := streams.ParseDetachKeys(r.URL.Query().Get("detachKeys"))
	if err != nil {
		writeError(w, fmt.Errorf("%v: %w", err, errdefs.ErrInvalidArgument))
		return
	}
	a, err := s.d.Attach(r.PathValue("id"), boolValue(r, "stdin"), boolValue(r, "stdout"), boolValue(r, "stderr"))
	if err != nil {
		writeError(w, err)
		return
	}
	a.DetachKeys = keys
	conn, rw, err := hijack(w, r, streamType(a.Tty))
	if err != nil {
		return
	}
	defer conn.Close()
	a.Stream(context.Background(), rw.Reader, conn, func() { closeWrite(conn) })
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := daemon.LogOpts{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
		Follow: boolValue(r, "follow"), Timestamps: boolValue(r, "timestamps"), Tail: -1}
	var err error
	if o.Since, err = parseTime(q.Get("since")); err != nil {
		writeError(w, err)
		return
	}
	if o.Until, err = parseTime(q.Get("until")); err != nil {
		writeError(w, err)
		return
	}
	if t := q.Get("tail"); t != "" && t != "all" {
		if o.Tail, err = strconv.Atoi(t); err != nil {
			writeError(w, fmt.Errorf("invalid value for tail: %q: %w", t, errdefs.ErrInvalidArgument))
			return
		}
	}
	started := false
	err = s.d.Logs(r.Context(), r.PathValue("id"), o, func(tty bool) io.Writer {
		w.Header().Set("Content-Type", streamType(tty))
		w.WriteHeader(http.StatusOK)
		started = true
		return newFlushWriter(w)
	})
	if err != nil && !started {
		writeError(w, err)
	}
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) {
	noContent(w, s.d.Remove(r.PathValue("id"), boolValue(r, "force"), boolValue(r, "v")))
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) {
	pf, _, err := pruneFilter(r, "until", "label", "label!")
	if err != nil {
		writeError(w, err)
		return
	}
	ids, err := s.d.Prune(pf)
	if err != nil {
		writeError(w, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ContainersDeleted": ids, "SpaceReclaimed": 0})
}

func (s *Server) imageList(w http.ResponseWriter, r *http.Request) {
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	list, err := s.d.ImageList(boolValue(r, "all"), f)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

// imageCreate imports a tarball (fromSrc=-, the body); pulling (fromImage)
// is the registry's work, not here yet.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if from := q.Get("fromImage"); from != "" {
		if tag := q.Get("tag"); tag != "" {
			if strings.HasPrefix(tag, "sha256:") {
				from += "@" + tag
			} else {
				from += ":" + tag
			}
		}
		s.progress(w, r, func(auth registry.Auth, p *daemon.Progress) error {
			return s.d.ImagePull(r.Context(), from, q.Get("platform"), auth, p)
		})
		return
	}
	src := q.Get("fromSrc")
	if src != "-" {
		writeError(w, fmt.Errorf("import from a URL is not supported; send the tarball in the request body (fromSrc=-): %w", errdefs.ErrNotImplemented))
		return
	}
	name := q.Get("repo")
	if tag := q.Get("tag"); name != "" && tag != "" {
		name += ":" + tag
	}
	img, err := s.d.ImageImport(r.Body, name, q["changes"])
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": img.ID.String()})
}

func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request) {
	list, err := s.d.ImageLoad(r.Body)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	// As docker: the names the archive gave, else the ID.
	for _, img := range list {
		if len(img.Tags) == 0 {
			enc.Encode(map[string]string{"stream": "Loaded image ID: " + img.ID.String() + "\n"})
		}
		for _, n := range img.Tags {
			enc.Encode(map[string]string{"stream": "Loaded image: " + images.FamiliarName(n) + "\n"})
		}
	}
}

func (s *Server) imageSave(w http.ResponseWriter, r *http.Request) {
	s.save(w, r.URL.Query()["names"])
}

func (s *Server) save(w http.ResponseWriter, names []string) {
	if len(names) == 0 {
		writeError(w, fmt.Errorf("no image names given: %w", errdefs.ErrInvalidArgument))
		return
	}
	// Check the names before the first byte, so that errors get a status.
	for _, n := range names {
		if _, err := s.d.ImageInspect(n); err != nil {
			writeError(w, err)
			return
		}
	}
	w.Header().Set("Content-Type", "application/x-tar")
	if err := s.d.ImageSave(w, names); err != nil {
		s.log.Error("image save", "err", err)
	}
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request) {
	pf, f, err := pruneFilter(r, "dangling", "until", "label", "label!")
	if err != nil {
		writeError(w, err)
		return
	}
	all := false
	if v := f["dangling"]; len(v) > 0 && (v[0] == "false" || v[0] == "0") {
		all = true
	}
	deleted, err := s.d.ImagePrune(all, pf)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"ImagesDeleted": deleted, "SpaceReclaimed": 0})
}

// splitAction splits "name/with/slashes/json" into name and action.
func splitAction(rest string) (string, string) {
	i := strings.LastIndex(rest, "/")
	if i < 0 {
		return rest, ""
	}
	return rest[:i], rest[i+1:]
}

func (s *Server) imageGet(w http.ResponseWriter, r *http.Request) {
	name, action := splitAction(r.PathValue("rest"))
	switch action {
	case "json":
		img, err := s.d.ImageInspect(name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, img)
	case "history":
		h, err := s.d.ImageHistory(name)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, h)
	case "get":
		s.save(w, []string{name})
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) imagePost(w http.ResponseWriter, r *http.Request) {
	name, action := splitAction(r.PathValue("rest"))
	switch action {
	case "tag":
		repo, tag := r.URL.Query().Get("repo"), r.URL.Query().Get("tag")
		if repo == "" {
			writeError(w, fmt.Errorf("repository name must have at least one component: %w", errdefs.ErrInvalidArgument))
			return
		}
		if tag != "" {
			repo += ":" + tag
		}
		err := s.d.ImageTag(name, repo)
		if err != nil {
			writeError(w, err)
			return
		}
		w.WriteHeader(http.StatusCreated)
	case "push":
		s.progress(w, r, func(auth registry.Auth, p *daemon.Progress) error {
			return s.d.ImagePush(r.Context(), name, r.URL.Query().Get("tag"), auth, p)
		})
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request) {
	resp, err := s.d.ImageRemove(r.PathValue("rest"), boolValue(r, "force"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

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
	tty, err := s.d.ExecTty(id)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.Detach {
		noContentOK(w, s.d.ExecStart(id, true, nil, nil, nil))
		return
	}
	conn, rw, err := hijack(w, r, streamType(tty))
	if err != nil {
		return
	}
	defer conn.Close()
	if err := s.d.ExecStart(id, false, rw.Reader, conn, func() { closeWrite(conn) }); err != nil {
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

// noContentOK answers 200 with no body, or the error.
func noContentOK(w http.ResponseWriter, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusOK)
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

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) {
	top, err := s.d.Top(r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, top)
}

// progress runs a pull or push: its JSON progress stream starts with the
// first message, so an error before that is a plain API error.
func (s *Server) progress(w http.ResponseWriter, r *http.Request, run func(registry.Auth, *daemon.Progress) error) {
	auth, err := registry.DecodeAuthHeader(r.Header.Get("X-Registry-Auth"))
	if err != nil {
		writeError(w, err)
		return
	}
	fw := newFlushWriter(w)
	p := daemon.NewProgress(fw, func() {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
	})
	if err := run(auth, p); err != nil {
		if p.Started() {
			p.Fail(err)
			return
		}
		writeError(w, err)
	}
}

func (s *Server) auth(w http.ResponseWriter, r *http.Request) {
	var a registry.Auth
	if err := decode(r, &a, false); err != nil {
		writeError(w, err)
		return
	}
	if err := s.d.Login(r.Context(), a); err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"Status": "Login Succeeded"})
}
