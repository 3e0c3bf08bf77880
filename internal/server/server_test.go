package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
)

// fake is a test backend: the operations a test sets; any other panics
// (the embedded nil Backend), which fails the test.
type fake struct {
	Backend
	inspect func(ref string) (*container.InspectResponse, error)
	start   func(ref string) error
	create  func(o backend.CreateOpts, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error)
	prune   func(everything bool) (volume.PruneReport, error)
}

func (f *fake) VolumePrune(everything bool, _ backend.PruneFilter) (volume.PruneReport, error) {
	return f.prune(everything)
}

func (f *fake) Inspect(ref string, _ bool) (*container.InspectResponse, error) {
	return f.inspect(ref)
}
func (f *fake) Start(ref, _ string) error { return f.start(ref) }
func (f *fake) Create(o backend.CreateOpts, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error) {
	return f.create(o, cfg, hc, nc)
}

func serve(t *testing.T, b Backend, method, path, body string) (int, http.Header, string) {
	t.Helper()
	srv := New(b, "test", slog.New(slog.NewTextHandler(io.Discard, nil)))
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, httptest.NewRequest(method, path, strings.NewReader(body)))
	return rec.Code, rec.Header(), rec.Body.String()
}

// messageOf is the "message" of docker's error body.
func messageOf(t *testing.T, body string) string {
	t.Helper()
	var m struct{ Message string }
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	return m.Message
}

func TestErrorClassesMapToStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
		msg  string
	}{
		{fmt.Errorf("No such container: x: %w", errdefs.ErrNotFound), 404, "No such container: x"},
		{fmt.Errorf("container x is not running: %w", errdefs.ErrConflict), 409, "container x is not running"},
		{fmt.Errorf("name taken: %w", errdefs.ErrAlreadyExists), 409, "name taken"},
		{fmt.Errorf("bad: %w", errdefs.ErrInvalidArgument), 400, "bad"},
		{fmt.Errorf("networks are not supported yet: %w", errdefs.ErrNotImplemented), 501, "networks are not supported yet"},
		{fmt.Errorf("registry down: %w", errdefs.ErrUnavailable), 503, "registry down"},
		{fmt.Errorf("login: %w", errdefs.ErrUnauthorized), 401, "login"},
		// A class carried across a process as text keeps the text whole.
		{errdefs.WithClass(errors.New(`exec: "x": executable file not found in $PATH`), errdefs.ErrInvalidArgument.Error()), 400, `exec: "x": executable file not found in $PATH`},
		{errors.New("disk on fire"), 500, "disk on fire"},
	} {
		b := &fake{inspect: func(string) (*container.InspectResponse, error) { return nil, tc.err }}
		code, hdr, body := serve(t, b, "GET", "/v1.45/containers/x/json", "")
		if code != tc.code || messageOf(t, body) != tc.msg || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("%v: %d %s (%s), want %d {\"message\":%q}", tc.err, code, body, hdr.Get("Content-Type"), tc.code, tc.msg)
		}
	}
}

func TestStartOfRunningContainerIsNotModified(t *testing.T) {
	b := &fake{start: func(string) error { return errdefs.ErrNotModified }}
	if code, _, body := serve(t, b, "POST", "/containers/x/start", ""); code != http.StatusNotModified || body != "" {
		t.Errorf("start of a running container: %d %q, want 304 and no body", code, body)
	}
}

func TestVersionedPaths(t *testing.T) {
	var got []string
	b := &fake{inspect: func(ref string) (*container.InspectResponse, error) {
		got = append(got, ref)
		return &container.InspectResponse{}, nil
	}}
	for _, path := range []string{"/containers/a/json", "/v1.24/containers/b/json", "/v1.50/containers/c/json"} {
		if code, hdr, _ := serve(t, b, "GET", path, ""); code != 200 || hdr.Get("Api-Version") != APIVersion {
			t.Errorf("GET %s: %d, Api-Version %q", path, code, hdr.Get("Api-Version"))
		}
	}
	if strings.Join(got, ",") != "a,b,c" {
		t.Errorf("refs reached the backend as %v", got)
	}
	for path, want := range map[string]string{
		"/v1.12/containers/a/json": "client version 1.12 is too old. Minimum supported API version is 1.24",
		"/v1.99/containers/a/json": "client version 1.99 is too new. Maximum supported API version is 1.50",
	} {
		code, _, body := serve(t, b, "GET", path, "")
		if code != 400 || !strings.HasPrefix(messageOf(t, body), want) {
			t.Errorf("GET %s: %d %s, want 400 %q", path, code, body, want)
		}
	}
	if code, _, _ := serve(t, b, "GET", "/v1.45/nosuch", ""); code != 404 {
		t.Errorf("an unknown path: %d, want 404", code)
	}
}

func TestCreateDecodesAndPassesQuery(t *testing.T) {
	var name, platform, img string
	b := &fake{create: func(o backend.CreateOpts, cfg *container.Config, _ *container.HostConfig, _ *network.NetworkingConfig) (container.CreateResponse, error) {
		name, platform, img = o.Name, o.Platform, cfg.Image
		return container.CreateResponse{ID: "abc", Warnings: []string{}}, nil
	}}
	code, _, body := serve(t, b, "POST", "/v1.45/containers/create?name=web&platform=linux/amd64", `{"Image":"busybox"}`)
	if code != 201 || name != "web" || platform != "linux/amd64" || img != "busybox" || !strings.Contains(body, `"Id":"abc"`) {
		t.Errorf("create: %d %s; backend got name %q platform %q image %q", code, body, name, platform, img)
	}
	for _, bad := range []string{"", "{not json"} {
		code, _, body := serve(t, b, "POST", "/containers/create", bad)
		if code != 400 || !strings.HasPrefix(messageOf(t, body), "invalid JSON") {
			t.Errorf("create with body %q: %d %s, want 400 invalid JSON", bad, code, body)
		}
	}
}

// Volume prune before API 1.42 removes named volumes too: the all filter
// came with 1.42.
func TestVolumePruneByVersion(t *testing.T) {
	var got []bool
	b := &fake{prune: func(everything bool) (volume.PruneReport, error) {
		got = append(got, everything)
		return volume.PruneReport{VolumesDeleted: []string{}}, nil
	}}
	for _, path := range []string{"/v1.41/volumes/prune", "/v1.42/volumes/prune", "/volumes/prune",
		`/v1.45/volumes/prune?filters={"all":["true"]}`} {
		if code, _, body := serve(t, b, "POST", path, ""); code != 200 {
			t.Errorf("POST %s: %d %s", path, code, body)
		}
	}
	if want := []bool{true, false, false, true}; !slices.Equal(got, want) {
		t.Errorf("everything per request %v, want %v", got, want)
	}
}
