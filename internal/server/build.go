package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/tent-project/tent/internal/builder"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/registry"
)

// buildOptions reads POST /build's query as dockerd's legacy builder
// does; what tent cannot do is refused, not ignored.
func buildOptions(r *http.Request) (builder.Options, error) {
	q := r.URL.Query()
	o := builder.Options{Tags: q["t"], Dockerfile: q.Get("dockerfile"), Target: q.Get("target"),
		NoCache: boolValue(r, "nocache"), Pull: boolValue(r, "pull"), Quiet: boolValue(r, "q"),
		NetworkMode: q.Get("networkmode"), Platform: q.Get("platform"), ContextStat: r.Header.Get("X-Tent-Context-Stat")}
	auth, err := registry.DecodeConfigHeader(r.Header.Get("X-Registry-Config"))
	if err != nil {
		return o, err
	}
	o.Auth = auth
	if v := q.Get("version"); v == "2" {
		return o, fmt.Errorf("BuildKit sessions (builder version 2) are not supported: use the legacy builder protocol (DOCKER_BUILDKIT=0, or a docker CLI without buildx): %w", errdefs.ErrNotImplemented)
	}
	if q.Get("remote") != "" {
		return o, fmt.Errorf("remote build contexts (git, URLs) are not supported yet: send the context in the request body: %w", errdefs.ErrNotImplemented)
	}
	if boolValue(r, "squash") {
		return o, fmt.Errorf("--squash is not supported: %w", errdefs.ErrNotImplemented)
	}
	if o.NetworkMode == "default" {
		o.NetworkMode = ""
	}
	for name, dst := range map[string]any{"buildargs": &o.BuildArgs, "labels": &o.Labels, "secrets": &o.Secrets} {
		if v := q.Get(name); v != "" {
			if err := json.Unmarshal([]byte(v), dst); err != nil {
				return o, fmt.Errorf("%s: %w: %w", name, err, errdefs.ErrInvalidArgument)
			}
		}
	}
	var cacheFrom []string
	if v := q.Get("cachefrom"); v != "" {
		if err := json.Unmarshal([]byte(v), &cacheFrom); err != nil {
			return o, fmt.Errorf("cachefrom: %w: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if len(cacheFrom) > 0 {
		return o, fmt.Errorf("--cache-from is not supported yet: %w", errdefs.ErrNotImplemented)
	}
	if v := q.Get("outputs"); v != "" && v != "[]" && v != "null" {
		return o, fmt.Errorf("build outputs are not supported: %w", errdefs.ErrNotImplemented)
	}
	if v := q.Get("extrahosts"); v != "" {
		o.ExtraHosts = strings.Split(v, ",")
	}
	ints := map[string]*int64{"memory": &o.Resources.Memory, "memswap": &o.Resources.MemorySwap,
		"cpushares": &o.Resources.CPUShares, "cpuperiod": &o.Resources.CPUPeriod, "cpuquota": &o.Resources.CPUQuota,
		"shmsize": &o.ShmSize}
	for name, dst := range ints {
		if v := q.Get(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return o, fmt.Errorf("%s: %w: %w", name, err, errdefs.ErrInvalidArgument)
			}
			*dst = n
		}
	}
	o.Resources.CpusetCpus, o.Resources.CpusetMems = q.Get("cpusetcpus"), q.Get("cpusetmems")
	if v := q.Get("ulimits"); v != "" && v != "null" {
		if err := json.Unmarshal([]byte(v), &o.Resources.Ulimits); err != nil {
			return o, fmt.Errorf("ulimits: %w: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	return o, nil
}

// build answers POST /build as dockerd's legacy builder: the context is
// the body; the answer a JSON message stream ("stream" text, the
// result's "aux" ID, an error message at the end of a failed build).
func (s *Server) build(w http.ResponseWriter, r *http.Request) {
	o, err := buildOptions(r)
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if o.ContextStat != "" && r.Header.Get("Expect") == "100-continue" {
		// tent's CLI names its context by its files' metadata and waits
		// before it sends them: a rebuild from the cache may do without
		// them (builder.BuildKnown). The answer is held until that is
		// known; else 100 Continue asks for the context.
		var held bytes.Buffer
		if _, ok := s.d.BuildKnown(r.Context(), o, buildOutput(json.NewEncoder(&held), o.Quiet)); ok {
			w.Write(held.Bytes())
			return
		}
		r.Body.Read(nil) // sends 100 Continue
	}
	// The context is read while the answer streams.
	http.NewResponseController(w).EnableFullDuplex()
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(newFlushWriter(w))
	if _, err := s.d.Build(r.Context(), o, r.Body, buildOutput(enc, o.Quiet)); err != nil {
		msg := message(err)
		detail := map[string]any{"message": msg}
		if code := builder.ExitCode(err); code != 0 {
			detail["code"] = code
		}
		enc.Encode(map[string]any{"errorDetail": detail, "error": msg})
	}
}

// buildOutput writes a build's report as the legacy builder's JSON
// messages (a quiet build's ID as a stream message too, as dockerd's).
func buildOutput(enc *json.Encoder, quiet bool) builder.Output {
	out := builder.Output{
		Stream: func(text string) { enc.Encode(map[string]string{"stream": text}) },
		Aux:    func(v any) { enc.Encode(map[string]any{"aux": v}) },
	}
	if quiet {
		aux := out.Aux
		out.Aux = func(v any) {
			aux(v)
			if m, ok := v.(map[string]string); ok {
				enc.Encode(map[string]string{"stream": m["ID"] + "\n"})
			}
		}
	}
	return out
}

func (s *Server) buildPrune(w http.ResponseWriter, r *http.Request) {
	// The cache's entries are whole images: all of them that nothing uses
	// go (with or without all=1). Filters and space targets are refused,
	// not ignored: a client asking to keep some cache must not lose it.
	f, err := filters(r)
	if err != nil {
		writeError(w, err)
		return
	}
	for k := range f {
		writeError(w, fmt.Errorf("build cache prune: the %s filter is not supported yet: %w", k, errdefs.ErrNotImplemented))
		return
	}
	for _, k := range []string{"keep-storage", "reserved-space", "max-used-space", "min-free-space"} {
		if v := r.URL.Query().Get(k); v != "" && v != "0" {
			writeError(w, fmt.Errorf("build cache prune: %s is not supported yet: %w", k, errdefs.ErrNotImplemented))
			return
		}
	}
	rep, err := s.d.BuildPrune()
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}
