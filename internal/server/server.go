// Package server puts the daemon on the wire as the Docker Engine API:
// versioned paths (/v1.24 ... /v1.50, and unversioned), docker's JSON
// error shape {"message": ...} with its status codes, and hijacked
// connections for attach and exec.
package server

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/tent-project/tent/internal/errdefs"
)

// The API versions served. The maximum is the docker 28.2 CLI's, so it
// talks to tent without negotiating down.
const (
	APIVersion    = "1.50"
	MinAPIVersion = "1.24"
)

// Server serves the Engine API for one daemon.
type Server struct {
	d   Backend
	log *slog.Logger
	mux *http.ServeMux
	// Version is the engine version reported by /version.
	Version string
	// Experimental: the engine says docker's experimental features are on
	// (the Docker-Experimental header, info and version): clients such as
	// the docker CLI offer their experimental verbs then.
	Experimental bool
}

// New returns the API server of d.
func New(d Backend, version string, log *slog.Logger) *Server {
	s := &Server{d: d, log: log, mux: http.NewServeMux(), Version: version}
	s.routes()
	return s
}

var versionPrefix = regexp.MustCompile(`^/v([0-9]+\.[0-9]+)(/.*)$`)

// ServeHTTP strips the version prefix, checks the version, and routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := versionPrefix.FindStringSubmatch(r.URL.Path); m != nil {
		if versionLess(m[1], MinAPIVersion) {
			writeError(w, fmt.Errorf("client version %s is too old. Minimum supported API version is %s, please upgrade your client to a newer version: %w", m[1], MinAPIVersion, errdefs.ErrInvalidArgument))
			return
		}
		if versionLess(APIVersion, m[1]) {
			writeError(w, fmt.Errorf("client version %s is too new. Maximum supported API version is %s: %w", m[1], APIVersion, errdefs.ErrInvalidArgument))
			return
		}
		r.URL.Path = m[2]
		r.URL.RawPath = ""
		r = r.WithContext(context.WithValue(r.Context(), versionKey{}, m[1]))
	}
	w.Header().Set("Api-Version", APIVersion)
	w.Header().Set("Server", "tent/"+s.Version+" (linux)")
	w.Header().Set("Docker-Experimental", strconv.FormatBool(s.Experimental))
	w.Header().Set("Ostype", "linux")
	s.log.Debug("api", "method", r.Method, "path", r.URL.Path)
	s.mux.ServeHTTP(w, r)
}

type versionKey struct{}

// apiVersion is the API version the client asked for: its path's, or
// the newest for an unversioned path (as dockerd).
func apiVersion(r *http.Request) string {
	if v, ok := r.Context().Value(versionKey{}).(string); ok {
		return v
	}
	return APIVersion
}

// versionLess compares "major.minor" versions.
func versionLess(a, b string) bool {
	am, an, _ := strings.Cut(a, ".")
	bm, bn, _ := strings.Cut(b, ".")
	x, _ := strconv.Atoi(am)
	y, _ := strconv.Atoi(bm)
	if x != y {
		return x < y
	}
	x, _ = strconv.Atoi(an)
	y, _ = strconv.Atoi(bn)
	return x < y
}

// errorStatus maps an error class to docker's status code.
func errorStatus(err error) int {
	switch {
	case errors.Is(err, errdefs.ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrAlreadyExists), errors.Is(err, errdefs.ErrConflict):
		return http.StatusConflict
	case errors.Is(err, errdefs.ErrInvalidArgument):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrNotImplemented):
		return http.StatusNotImplemented
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errdefs.ErrForbidden):
		return http.StatusForbidden
	}
	return http.StatusInternalServerError
}

// message is err's text without the trailing class (": not found"), which
// the status code already says.
func message(err error) string {
	msg := err.Error()
	for _, class := range []error{errdefs.ErrNotFound, errdefs.ErrAlreadyExists, errdefs.ErrInvalidArgument,
		errdefs.ErrConflict, errdefs.ErrNotImplemented, errdefs.ErrUnavailable, errdefs.ErrUnauthorized, errdefs.ErrForbidden} {
		msg = strings.TrimSuffix(msg, ": "+class.Error())
	}
	return msg
}

func writeError(w http.ResponseWriter, err error) {
	code := errorStatus(err)
	if code == http.StatusNotModified {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, map[string]string{"message": message(err)})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// decode reads a JSON body; an empty body is allowed when optional.
func decode(r *http.Request, v any, optional bool) error {
	err := json.NewDecoder(r.Body).Decode(v)
	if err == io.EOF && optional {
		return nil
	}
	if err != nil {
		if err == io.EOF {
			return fmt.Errorf("invalid JSON: request body is empty: %w", errdefs.ErrInvalidArgument)
		}
		return fmt.Errorf("invalid JSON: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return nil
}

func boolValue(r *http.Request, name string) bool {
	v := strings.ToLower(r.URL.Query().Get(name))
	return v != "" && v != "0" && v != "false" && v != "no"
}

// filters parses the filters parameter: {"key":{"value":true}} (or the
// old {"key":["value"]}).
func filters(r *http.Request) (map[string][]string, error) {
	raw := r.URL.Query().Get("filters")
	out := map[string][]string{}
	if raw == "" {
		return out, nil
	}
	var m map[string]map[string]bool
	if err := json.Unmarshal([]byte(raw), &m); err == nil {
		for k, vs := range m {
			for v, on := range vs {
				if on {
					out[k] = append(out[k], v)
				}
			}
		}
		return out, nil
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil {
		return nil, fmt.Errorf("invalid filters: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// flushWriter flushes after every write, for streams.
type flushWriter struct {
	w http.ResponseWriter
	f http.Flusher
}

func newFlushWriter(w http.ResponseWriter) *flushWriter {
	f, _ := w.(http.Flusher)
	return &flushWriter{w: w, f: f}
}

func (fw *flushWriter) Write(p []byte) (int, error) {
	n, err := fw.w.Write(p)
	if fw.f != nil {
		fw.f.Flush()
	}
	return n, err
}

// hijack takes over the connection for a raw stream, answering 101 if the
// client asked to upgrade (as the docker CLI does) and 200 otherwise.
func hijack(w http.ResponseWriter, r *http.Request, contentType string) (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("connection cannot be hijacked")
	}
	conn, rw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	status := "HTTP/1.1 200 OK\r\n"
	if strings.EqualFold(r.Header.Get("Upgrade"), "tcp") {
		status = "HTTP/1.1 101 UPGRADED\r\nConnection: Upgrade\r\nUpgrade: tcp\r\n"
	}
	fmt.Fprintf(rw, "%sContent-Type: %s\r\nApi-Version: %s\r\n\r\n", status, contentType, APIVersion)
	if err := rw.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, rw, nil
}

// closeWrite half-closes a hijacked connection, or closes it.
func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
		return
	}
	conn.Close()
}

// streamType is the Content-Type of an attach, exec or logs stream: raw
// with a terminal, multiplexed without, named so since API 1.42 (raw
// before, whatever the framing).
func streamType(r *http.Request, tty bool) string {
	if tty || versionLess(apiVersion(r), "1.42") {
		return "application/vnd.docker.raw-stream"
	}
	return "application/vnd.docker.multiplexed-stream"
}
