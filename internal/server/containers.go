package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"

	"github.com/moby/moby/api/types/checkpoint"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/streams"
)

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request) {
	var req struct {
		container.CreateRequest
		// MacAddress is where API clients before 1.44 put the MAC of the
		// container's main network (now in its endpoint settings).
		MacAddress string `json:"MacAddress"`
	}
	if err := decode(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	o, err := createCompat(apiVersion(r), &req.CreateRequest)
	if err != nil {
		writeError(w, err)
		return
	}
	if req.MacAddress != "" && req.Config != nil {
		if err := legacyMAC(&req.CreateRequest, req.MacAddress); err != nil {
			writeError(w, err)
			return
		}
	}
	o.Name, o.Platform = r.URL.Query().Get("name"), sinceVersion(r, "platform", "1.41")
	resp, err := s.d.Create(o, req.Config, req.HostConfig, req.NetworkingConfig)
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
	list, err := s.d.List(backend.ListOpts{All: boolValue(r, "all"), Limit: limit, Filters: f, Size: boolValue(r, "size")})
	if err != nil {
		writeError(w, err)
		return
	}
	writeVersionedList(w, r, list, psAnnotations)
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request) {
	c, err := s.d.Inspect(r.PathValue("id"), boolValue(r, "size"))
	if err != nil {
		writeError(w, err)
		return
	}
	var out any = c
	if c.NetworkSettings != nil && versionLess(apiVersion(r), "1.52") {
		out = legacyInspect{c, legacySettings(c.NetworkSettings)}
	}
	writeVersioned(w, r, out, kernelMemory, shortIDAlias)
}

// legacyInspect is inspect's answer before API 1.52, whose
// NetworkSettings also had the default bridge's address at top level.
type legacyInspect struct {
	*container.InspectResponse
	NetworkSettings legacyNetworkSettings
}

type legacyNetworkSettings struct {
	*container.NetworkSettings
	Bridge                 string
	HairpinMode            bool
	LinkLocalIPv6Address   string
	LinkLocalIPv6PrefixLen int
	SecondaryIPAddresses   []string
	SecondaryIPv6Addresses []string
	EndpointID             string
	Gateway                string
	GlobalIPv6Address      string
	GlobalIPv6PrefixLen    int
	IPAddress              string
	IPPrefixLen            int
	IPv6Gateway            string
	MacAddress             string
}

func legacySettings(ns *container.NetworkSettings) legacyNetworkSettings {
	out := legacyNetworkSettings{NetworkSettings: ns}
	if ep := ns.Networks[network.NetworkBridge]; ep != nil && ep.IPAddress.IsValid() {
		out.EndpointID, out.IPAddress, out.IPPrefixLen = ep.EndpointID, ep.IPAddress.String(), ep.IPPrefixLen
		out.MacAddress = ep.MacAddress.String()
		if ep.Gateway.IsValid() {
			out.Gateway = ep.Gateway.String()
		}
		if ep.GlobalIPv6Address.IsValid() {
			out.GlobalIPv6Address, out.GlobalIPv6PrefixLen = ep.GlobalIPv6Address.String(), ep.GlobalIPv6PrefixLen
		}
		if ep.IPv6Gateway.IsValid() {
			out.IPv6Gateway = ep.IPv6Gateway.String()
		}
	}
	return out
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
	if r.URL.Query().Get("checkpoint-dir") != "" {
		writeError(w, errCheckpointDir)
		return
	}
	noContent(w, s.d.Start(r.PathValue("id"), r.URL.Query().Get("checkpoint")))
}

// errCheckpointDir refuses checkpoints in a directory of the client's
// choice: the engine keeps them with the container.
var errCheckpointDir = fmt.Errorf("checkpoints in a directory of the client's choice are not supported: %w", errdefs.ErrNotImplemented)

func (s *Server) checkpointCreate(w http.ResponseWriter, r *http.Request) {
	var req checkpoint.CreateRequest
	if err := decode(r, &req, false); err != nil {
		writeError(w, err)
		return
	}
	if err := s.d.CheckpointCreate(r.PathValue("id"), req); err != nil {
		writeError(w, err)
		return
	}
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) checkpointList(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("dir") != "" {
		writeError(w, errCheckpointDir)
		return
	}
	list, err := s.d.CheckpointList(r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) checkpointDelete(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("dir") != "" {
		writeError(w, errCheckpointDir)
		return
	}
	noContent(w, s.d.CheckpointDelete(r.PathValue("id"), r.PathValue("name")))
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request) {
	t, err := timeoutParam(r)
	if err == nil {
		err = s.d.Stop(r.PathValue("id"), sinceVersion(r, "signal", "1.42"), t)
	}
	noContent(w, err)
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request) {
	t, err := timeoutParam(r)
	if err == nil {
		err = s.d.Restart(r.PathValue("id"), sinceVersion(r, "signal", "1.42"), t)
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
	// Before API 1.30 there were no conditions, and the answer came whole
	// at the end.
	legacy := versionLess(apiVersion(r), "1.30")
	cond := container.WaitCondition(sinceVersion(r, "condition", "1.30"))
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
		if legacy {
			return
		}
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
	if legacy {
		writeJSON(w, http.StatusOK, resp)
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
	id := r.PathValue("id")
	logs := backend.LogOpts{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"), Tail: -1}
	if !boolValue(r, "stream") {
		// The log only, of a container in any state (as dockerd).
		var conn net.Conn
		err := s.d.Logs(r.Context(), id, logs, func(tty bool) io.Writer {
			var err error
			if conn, _, err = hijack(w, r, streamType(r, tty)); err != nil {
				return io.Discard
			}
			return conn
		})
		if conn == nil {
			writeError(w, err)
			return
		}
		closeWrite(conn)
		conn.Close()
		return
	}
	a, err := s.d.Attach(id, boolValue(r, "stdin"), logs.Stdout, logs.Stderr, keys)
	if err != nil {
		writeError(w, err)
		return
	}
	conn, rw, err := hijack(w, r, streamType(r, a.Terminal()))
	if err != nil {
		a.Cancel()
		return
	}
	defer conn.Close()
	if boolValue(r, "logs") {
		s.d.Logs(r.Context(), id, logs, func(bool) io.Writer { return conn })
	}
	a.Stream(context.Background(), rw.Reader, conn, func() { closeWrite(conn) })
}

func (s *Server) containerLogs(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	o := backend.LogOpts{Stdout: boolValue(r, "stdout"), Stderr: boolValue(r, "stderr"),
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
		w.Header().Set("Content-Type", streamType(r, tty))
		w.WriteHeader(http.StatusOK)
		started = true
		return newFlushWriter(w)
	})
	if err != nil && !started {
		writeError(w, err)
	}
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request) {
	if boolValue(r, "link") {
		writeError(w, fmt.Errorf("removing a link (rm --link) is not supported yet: %w", errdefs.ErrNotImplemented))
		return
	}
	noContent(w, s.d.Remove(r.PathValue("id"), boolValue(r, "force"), boolValue(r, "v")))
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request) {
	pf, _, err := pruneFilter(r, "until", "label", "label!")
	if err != nil {
		writeError(w, err)
		return
	}
	ids, reclaimed, err := s.d.Prune(pf)
	if err != nil {
		writeError(w, err)
		return
	}
	if ids == nil {
		ids = []string{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"ContainersDeleted": ids, "SpaceReclaimed": reclaimed})
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request) {
	top, err := s.d.Top(r.PathValue("id"), r.URL.Query().Get("ps_args"))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, top)
}

// legacyMAC moves an old client's Config.MacAddress to the endpoint
// settings of the container's main network, as dockerd does.
func legacyMAC(req *container.CreateRequest, mac string) error {
	var hw network.HardwareAddr
	if err := hw.UnmarshalText([]byte(mac)); err != nil {
		return fmt.Errorf("invalid MAC address %q: %w", mac, errdefs.ErrInvalidArgument)
	}
	name := string(req.HostConfig.NetworkMode)
	if name == "" || name == "default" {
		name = network.NetworkBridge
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &network.NetworkingConfig{}
	}
	if req.NetworkingConfig.EndpointsConfig == nil {
		req.NetworkingConfig.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	es := req.NetworkingConfig.EndpointsConfig[name]
	if es == nil {
		es = &network.EndpointSettings{}
		req.NetworkingConfig.EndpointsConfig[name] = es
	}
	if len(es.MacAddress) == 0 {
		es.MacAddress = hw
	}
	return nil
}
