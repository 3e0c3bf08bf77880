package server

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	"github.com/tent-project/tent/internal/backend"
)

// created is what a create request reached the backend as.
type created struct {
	o  backend.CreateOpts
	hc *container.HostConfig
	nc *network.NetworkingConfig
	c  *container.Config
}

func createAt(t *testing.T, version, body string) (created, int, string) {
	t.Helper()
	var got created
	b := &fake{create: func(o backend.CreateOpts, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error) {
		got = created{o, hc, nc, cfg}
		return container.CreateResponse{ID: "abc"}, nil
	}}
	code, _, resp := serve(t, b, "POST", "/v"+version+"/containers/create?name=x&platform=linux/amd64", body)
	return got, code, resp
}

// A create request means what it meant at its API version: fields of
// later versions are dropped, old defaults kept, and what cannot be
// ignored safely is refused, as dockerd does.
func TestCreateByVersion(t *testing.T) {
	body := `{"Image":"i","Healthcheck":{"Test":["CMD","true"],"StartInterval":1000000000},
		"HostConfig":{"AutoRemove":true,"ConsoleSize":[30,100],"Annotations":{"a":"b"},"PidsLimit":-1,
		"Mounts":[{"Type":"bind","Source":"/s","Target":"/t","BindOptions":{"CreateMountpoint":true,"NonRecursive":true}},
		          {"Type":"tmpfs","Target":"/u","VolumeOptions":{"NoCopy":true}}]},
		"NetworkingConfig":{"EndpointsConfig":{"n":{"GwPriority":5}}}}`

	old, code, resp := createAt(t, "1.24", body)
	if code != 201 {
		t.Fatalf("create at 1.24: %d %s", code, resp)
	}
	hc := old.hc
	if hc.AutoRemove || hc.ConsoleSize != [2]uint{} || hc.Annotations != nil || hc.IpcMode != container.IPCModeShareable ||
		hc.Mounts[0].BindOptions.CreateMountpoint || hc.Mounts[0].BindOptions.NonRecursive || hc.Mounts[1].VolumeOptions != nil ||
		old.c.Healthcheck.StartInterval != 0 || !old.o.ReadOnlyNonRecursive || old.nc.EndpointsConfig["n"].GwPriority != 0 ||
		hc.PidsLimit != nil || old.o.Platform != "" || old.o.Name != "x" {
		t.Errorf("create at 1.24 reached the backend as %+v %+v", old.o, hc)
	}
	if !old.o.CgroupnsHostDefault || hc.CgroupnsMode != "" {
		t.Errorf("cgroupns mode at 1.24: the host's default not asked of the backend (%+v, %q)", old.o, hc.CgroupnsMode)
	}

	// At 1.48 everything is kept, but options of another mount type are
	// an error (since 1.42).
	_, code, resp = createAt(t, "1.48", body)
	if code != 400 || messageOf(t, resp) != `VolumeOptions must not be specified on mount type "tmpfs"` {
		t.Errorf("create at 1.48 with VolumeOptions on a tmpfs: %d %s", code, resp)
	}
	now, code, resp := createAt(t, "1.48", strings.Replace(body, `,"VolumeOptions":{"NoCopy":true}`, "", 1))
	if code != 201 {
		t.Fatalf("create at 1.48: %d %s", code, resp)
	}
	hc = now.hc
	if !hc.AutoRemove || hc.ConsoleSize != [2]uint{30, 100} || hc.Annotations["a"] != "b" || hc.IpcMode != "" || hc.CgroupnsMode != "" ||
		!hc.Mounts[0].BindOptions.CreateMountpoint || !hc.Mounts[0].BindOptions.NonRecursive || now.c.Healthcheck.StartInterval == 0 ||
		now.o.ReadOnlyNonRecursive || now.o.CgroupnsHostDefault || now.nc.EndpointsConfig["n"].GwPriority != 5 || now.o.Platform != "linux/amd64" {
		t.Errorf("create at 1.48 reached the backend as %+v %+v", now.o, hc)
	}

	for _, tc := range []struct{ version, body, msg string }{
		{"1.43", `{"Image":"i","NetworkingConfig":{"EndpointsConfig":{"b":{},"a":{}}}}`, "Container cannot be created with multiple network endpoints: a, b"},
		{"1.43", `{"Image":"i","HostConfig":{"Mounts":[{"Type":"bind","Source":"/s","Target":"/t","ReadOnly":true,"BindOptions":{"ReadOnlyForceRecursive":true}}]}}`, "BindOptions.ReadOnlyForceRecursive needs API v1.44 or newer"},
		{"1.44", `{"Image":"i","HostConfig":{"Mounts":[{"Type":"volume","Source":"v","Target":"/t","VolumeOptions":{"Subpath":"x"}}]}}`, "VolumeOptions.Subpath needs API v1.45 or newer"},
		{"1.47", `{"Image":"i","HostConfig":{"Mounts":[{"Type":"image","Source":"i","Target":"/t"}]}}`, `Mount type "Image" needs API v1.48 or newer`},
	} {
		if _, code, resp := createAt(t, tc.version, tc.body); code != 400 || messageOf(t, resp) != tc.msg {
			t.Errorf("create at %s of %s: %d %s, want 400 %q", tc.version, tc.body, code, resp, tc.msg)
		}
	}
}

// Stop and restart take a signal since 1.42; before, the parameter
// did not exist and is not read.
type stopFake struct {
	fake
	sigs []string
}

func (f *stopFake) Stop(_ string, sig string, _ *int) error { f.sigs = append(f.sigs, sig); return nil }
func (f *stopFake) Restart(_ string, sig string, _ *int) error {
	f.sigs = append(f.sigs, sig)
	return nil
}

func TestStopSignalByVersion(t *testing.T) {
	b := &stopFake{}
	for _, p := range []string{"/v1.41/containers/x/stop?signal=INT", "/v1.42/containers/x/stop?signal=INT",
		"/v1.41/containers/x/restart?signal=HUP", "/v1.50/containers/x/restart?signal=HUP"} {
		if code, _, body := serve(t, b, "POST", p, ""); code != http.StatusNoContent {
			t.Errorf("POST %s: %d %s", p, code, body)
		}
	}
	if diff := cmp.Diff([]string{"", "INT", "", "HUP"}, b.sigs); diff != "" {
		t.Errorf("signals reaching the backend (-want +got):\n%s", diff)
	}
}

// Answers in the shape of the request's version.
type answerFake struct {
	fake
}

func (answerFake) ImageList(bool, map[string][]string, bool) ([]image.Summary, error) {
	return []image.Summary{{ID: "sha256:a", RepoTags: []string{}, RepoDigests: []string{}}, {ID: "sha256:b", RepoTags: []string{"b:1"}, RepoDigests: []string{}}}, nil
}

func (answerFake) Info() (*system.Info, error) {
	return &system.Info{ContainerdCommit: system.Commit{ID: "c1"}}, nil
}

func (answerFake) List(backend.ListOpts) ([]container.Summary, error) {
	s := container.Summary{ID: "x"}
	s.HostConfig.Annotations = map[string]string{"a": "b"}
	return []container.Summary{s}, nil
}

func TestAnswersByVersion(t *testing.T) {
	get := func(path string) any {
		t.Helper()
		code, _, body := serve(t, &answerFake{}, "GET", path, "")
		if code != 200 {
			t.Fatalf("GET %s: %d %s", path, code, body)
		}
		var v any
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	field := func(v any, path ...any) any {
		for _, p := range path {
			switch k := p.(type) {
			case int:
				v = v.([]any)[k]
			case string:
				v = v.(map[string]any)[k]
			}
		}
		return v
	}
	for _, tc := range []struct {
		path  string
		field []any
		want  any
	}{
		{"/v1.42/images/json", []any{0, "RepoTags"}, []any{"<none>:<none>"}},
		{"/v1.42/images/json", []any{0, "RepoDigests"}, []any{"<none>@<none>"}},
		{"/v1.42/images/json", []any{1, "RepoDigests"}, []any{}},
		{"/v1.43/images/json", []any{0, "RepoTags"}, []any{}},
		{"/v1.43/images/json", []any{0, "VirtualSize"}, float64(0)},
		{"/v1.44/images/json", []any{0, "VirtualSize"}, nil},
		{"/v1.49/info", []any{"BridgeNfIptables"}, false},
		{"/v1.50/info", []any{"BridgeNfIptables"}, nil},
		{"/v1.48/info", []any{"ContainerdCommit", "Expected"}, "c1"},
		{"/v1.49/info", []any{"ContainerdCommit", "Expected"}, nil},
		{"/v1.45/containers/json", []any{0, "HostConfig", "Annotations"}, nil},
		{"/v1.46/containers/json", []any{0, "HostConfig", "Annotations", "a"}, "b"},
	} {
		if got := field(get(tc.path), tc.field...); !cmp.Equal(got, tc.want) {
			t.Errorf("GET %s: %v = %#v, want %#v", tc.path, tc.field, got, tc.want)
		}
	}
}

func (answerFake) ImageInspect(string) (*image.InspectResponse, error) {
	return &image.InspectResponse{ID: "sha256:a", Os: "linux", Architecture: "amd64"}, nil
}

// A platform parameter selects the image's own platform or nothing: an
// image of tent's is one platform.
func TestImagePlatformParameter(t *testing.T) {
	arm := url.QueryEscape(`{"os":"linux","architecture":"arm64"}`)
	amd := url.QueryEscape(`{"os":"linux","architecture":"amd64"}`)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/v1.49/images/a/json?platform=" + arm, 404},
		{"GET", "/v1.48/images/a/json?platform=" + arm, 200}, // not a parameter yet
		{"GET", "/v1.49/images/a/json?platform=" + amd, 200},
		{"GET", "/v1.49/images/a/json?platform=notjson", 400},
		{"POST", "/v1.48/images/load?platform=" + url.QueryEscape(`{"os":"linux","architecture":"s390x"}`), 501},
		{"GET", "/v1.45/images/search?term=x", 501},
		{"DELETE", "/v1.50/images/a?platforms=" + arm, 501},
		{"DELETE", "/v1.45/containers/a?link=1", 501},
		{"POST", "/v1.45/build/prune?keep-storage=1000", 501},
		{"GET", "/v1.45/networks/n?scope=swarm", 404},
	} {
		if code, _, body := serve(t, &answerFake{}, tc.method, tc.path, ""); code != tc.code {
			t.Errorf("%s %s: %d %s, want %d", tc.method, tc.path, code, body, tc.code)
		}
	}
}
