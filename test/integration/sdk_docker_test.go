package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// TestSDKAgreesWithDocker runs one scenario through the Go SDK against
// dockerd and tent at API 1.41 (the reference dockerd's highest) and
// compares what each answered, field by field, for container inspect and
// list, image inspect and list, volumes, info and version: IDs, times and
// what belongs to the host or the engine's build are left out (sdkSkip),
// and for info and version only the fields' presence and types are held
// equal (the engines differ in version, storage and plugins by nature).
func TestSDKAgreesWithDocker(t *testing.T) {
	d, e, _, _ := startPair(t)
	bb := busyboxTar(t)
	answers := map[string]map[string]any{}
	for name, host := range map[string]string{"docker": d.host, "tent": e.host} {
		answers[name] = sdkScenario(t, sdkClient(t, host, "1.41"), bb)
	}
	for _, what := range slices.Sorted(func(yield func(string) bool) {
		for k := range answers["docker"] {
			if !yield(k) {
				return
			}
		}
	}) {
		var diffs []string
		compareJSON(what, answers["docker"][what], answers["tent"][what], &diffs)
		for _, d := range diffs {
			t.Errorf("%s", d)
		}
	}
}

// sdkScenario makes the same objects on an engine and returns its answers
// about them, as generic JSON.
func sdkScenario(t *testing.T, c *client.Client, busybox []byte) map[string]any {
	ctx := context.Background()
	img := "sdk/cmp:1"
	jsonMessages(t, must(c.ImageImport(ctx, client.ImageImportSource{Source: bytes.NewReader(busybox), SourceName: "-"}, img,
		client.ImageImportOptions{Changes: []string{`CMD ["sh"]`, "ENV PATH=/bin", "LABEL kind=cmp", "WORKDIR /", "EXPOSE 80"}}))(t))
	must(c.VolumeCreate(ctx, client.VolumeCreateOptions{Name: "cmpvol", Labels: map[string]string{"cmp": "1"}}))(t)
	running := must(c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "cmp-running",
		Config: &container.Config{Image: img, Cmd: []string{"sleep", "300"}, Labels: map[string]string{"cmp": "1"}, Env: []string{"A=b"}, WorkingDir: "/tmp", User: "0:0",
			StopSignal: "SIGINT", Hostname: "cmphost"},
		HostConfig: &container.HostConfig{Binds: []string{"cmpvol:/data", "/tmp:/hosttmp:ro"}, NetworkMode: "none", ReadonlyRootfs: false,
			RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyOnFailure, MaximumRetryCount: 2},
			Tmpfs:         map[string]string{"/scratch": "size=1m"}, CapAdd: []string{"NET_ADMIN"}, Init: ptr(false),
			Resources: container.Resources{Memory: 64 << 20, CPUShares: 512, PidsLimit: ptr(int64(100)), Ulimits: []*container.Ulimit{{Name: "nofile", Soft: 1000, Hard: 2000}}}}}))(t)
	must(c.ContainerStart(ctx, running.ID, client.ContainerStartOptions{}))(t)
	exited := must(c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "cmp-exited",
		Config:     &container.Config{Image: img, Cmd: []string{"sh", "-c", "exit 3"}, Labels: map[string]string{"cmp": "1"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"}}))(t)
	must(c.ContainerStart(ctx, exited.ID, client.ContainerStartOptions{}))(t)
	<-c.ContainerWait(ctx, exited.ID, client.ContainerWaitOptions{}).Result
	must(c.ContainerCreate(ctx, client.ContainerCreateOptions{Name: "cmp-created", Config: &container.Config{Image: img, Labels: map[string]string{"cmp": "1"}},
		HostConfig: &container.HostConfig{NetworkMode: "none"}}))(t)

	generic := func(v any) any {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		var out any
		json.Unmarshal(b, &out)
		return out
	}
	raw := func(b json.RawMessage) any {
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	out := map[string]any{}
	for _, n := range []string{"cmp-running", "cmp-exited", "cmp-created"} {
		ci := raw(must(c.ContainerInspect(ctx, n, client.ContainerInspectOptions{Size: true}))(t).Raw)
		// dockerd lists a container's mounts in a map's order: by
		// destination here, for both.
		if m, ok := ci.(map[string]any); ok {
			if mounts, ok := m["Mounts"].([]any); ok {
				slices.SortFunc(mounts, func(a, b any) int {
					return strings.Compare(fmt.Sprint(a.(map[string]any)["Destination"]), fmt.Sprint(b.(map[string]any)["Destination"]))
				})
			}
		}
		out["inspect "+n] = ci
	}
	list := must(c.ContainerList(ctx, client.ContainerListOptions{All: true, Size: true, Filters: make(client.Filters).Add("label", "cmp=1")}))(t).Items
	slices.SortFunc(list, func(a, b container.Summary) int { return strings.Compare(a.Names[0], b.Names[0]) })
	for _, s := range list {
		slices.SortFunc(s.Mounts, func(a, b container.MountPoint) int { return strings.Compare(a.Destination, b.Destination) })
	}
	out["ps -a"] = generic(list)
	out["image inspect"] = generic(must(c.ImageInspect(ctx, img))(t).InspectResponse)
	out["images"] = generic(must(c.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", img)}))(t).Items)
	out["history"] = generic(must(c.ImageHistory(ctx, img))(t).Items)
	out["volume inspect"] = generic(must(c.VolumeInspect(ctx, "cmpvol", client.VolumeInspectOptions{}))(t).Volume)
	out["volumes"] = generic(must(c.VolumeList(ctx, client.VolumeListOptions{Filters: make(client.Filters).Add("label", "cmp=1")}))(t).Items)
	out["info"] = generic(must(c.Info(ctx, client.InfoOptions{}))(t).Info)
	out["version"] = generic(must(c.ServerVersion(ctx, client.ServerVersionOptions{}))(t))
	return out
}

// compareJSON appends to diffs each difference between docker's answer d
// and tent's answer e at path p.
func compareJSON(p string, d, e any, diffs *[]string) {
	mode := sdkSkip(p)
	if mode == "skip" {
		return
	}
	dm, dIsMap := d.(map[string]any)
	em, eIsMap := e.(map[string]any)
	if dIsMap && eIsMap {
		for k, dv := range dm {
			ev, ok := em[k]
			if !ok {
				if sdkSkip(p+"."+k) != "skip" {
					*diffs = append(*diffs, fmt.Sprintf("%s.%s: docker has %s, tent has no such field", p, k, short(dv)))
				}
				continue
			}
			compareJSON(p+"."+k, dv, ev, diffs)
		}
		for k, ev := range em {
			if _, ok := dm[k]; !ok && sdkSkip(p+"."+k) != "skip" {
				*diffs = append(*diffs, fmt.Sprintf("%s.%s: tent has %s, docker has no such field", p, k, short(ev)))
			}
		}
		return
	}
	da, dIsList := d.([]any)
	ea, eIsList := e.([]any)
	if dIsList && eIsList && mode != "type" {
		if len(da) != len(ea) {
			*diffs = append(*diffs, fmt.Sprintf("%s: docker has %s, tent has %s", p, short(d), short(e)))
			return
		}
		for i := range da {
			compareJSON(fmt.Sprintf("%s[%d]", p, i), da[i], ea[i], diffs)
		}
		return
	}
	if ds, ok := d.(string); ok && mode == "duration" {
		if es, ok := e.(string); !ok || statusDuration.ReplaceAllString(ds, "D") != statusDuration.ReplaceAllString(es, "D") {
			*diffs = append(*diffs, fmt.Sprintf("%s: docker has %s, tent has %s", p, short(d), short(e)))
		}
		return
	}
	if ds, ok := d.(string); ok && mode == "shape" {
		if es, ok := e.(string); !ok || len(es) != len(ds) {
			*diffs = append(*diffs, fmt.Sprintf("%s: docker has %s, tent has %s (not of its shape)", p, short(d), short(e)))
		}
		return
	}
	if mode == "type" || mode == "shape" {
		if fmt.Sprintf("%T", d) != fmt.Sprintf("%T", e) && d != nil && e != nil {
			*diffs = append(*diffs, fmt.Sprintf("%s: docker has a %T (%s), tent a %T (%s)", p, d, short(d), e, short(e)))
		}
		return
	}
	if !reflect.DeepEqual(d, e) && !(empty(d) && empty(e)) {
		*diffs = append(*diffs, fmt.Sprintf("%s: docker has %s, tent has %s", p, short(d), short(e)))
	}
}

// empty: null, [] and {} read the same to an SDK.
func empty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

func short(v any) string {
	b, _ := json.Marshal(v)
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// statusDuration is the duration in a list's status.
var statusDuration = regexp.MustCompile(`Less than a second|About an? \w+|\d+ \w+`)

// sdkRules say how a path is compared, first match wins: "skip" (times,
// the host's or the engine's own values, and the differences
// docs/engine.md gives reasons for), "shape" (the same type, and for a
// string the same length: IDs, generated names), "type" (presence and
// type only), "duration" (a string the same but for a duration); any
// other path by value.
var sdkRules = []struct {
	re   *regexp.Regexp
	mode string
}{
	{regexp.MustCompile(`\.(Created|CreatedAt|StartedAt|FinishedAt|Pid|SystemTime|LastTagTime|SandboxKey)$`), "skip"},
	// A list's status says how long ago ("Up 1 second", "Up Less than a
	// second"): the same but for the duration, which depends on when
	// each engine was asked.
	{regexp.MustCompile(`^ps -a\[\d+\]\.Status$`), "duration"},
	// The engines' own parts: runtimes, the commits of containerd and
	// runc, the engine ID's format (dockerd 20.10's is not today's UUID).
	{regexp.MustCompile(`^info\.(Runtimes\.|RuncCommit|ContainerdCommit|InitCommit|ID$)`), "skip"},
	// Fields of later API versions in tent's answers (clients ignore
	// what they do not know).
	{regexp.MustCompile(`\.(DNSNames|GwPriority)$`), "skip"},
	// An image's layer directories: tent does not show a committed
	// layer's paths.
	{regexp.MustCompile(`^image inspect\.GraphDriver\.Data\.`), "skip"},
	// dockerd 20.10's default list predates /sys/devices/virtual/powercap.
	{regexp.MustCompile(`\.HostConfig\.MaskedPaths$`), "skip"},
	{regexp.MustCompile(`\.(Id|ID|ImageID|SandboxID|EndpointID|NetworkID)$|^inspect [^.]+\.Image$|\.Config\.Hostname$`), "shape"},
	{regexp.MustCompile(`\.(ResolvConfPath|HostnamePath|HostsPath|LogPath|Mountpoint|Source)$|\.GraphDriver\.Data\.`), "type"},
	// tent's runtime is "tent" ("runc" names it too); its cgroup
	// namespace is private on cgroup v1 as on v2 (dockerd's on v1: host).
	{regexp.MustCompile(`\.HostConfig\.(Runtime|CgroupnsMode)$`), "skip"},
	// Left out when empty by today's API types.
	{regexp.MustCompile(`\.Config\.OnBuild$`), "skip"},
	// dockerd makes a bind of a parent of its own data root rslave.
	{regexp.MustCompile(`\.Mounts\[\d+\]\.Propagation$`), "skip"},
	{regexp.MustCompile(`^info\.(OSType|Architecture|NCPU|MemTotal|KernelVersion|OperatingSystem|OSVersion|CgroupDriver|CgroupVersion|LoggingDriver|Driver|IndexServerAddress|OomKillDisable|MemoryLimit|SwapLimit|CPUShares|CPUSet|PidsLimit|IPv4Forwarding|Containers|ContainersRunning|ContainersPaused|ContainersStopped|Images|Swarm\.LocalNodeState)$`), ""},
	{regexp.MustCompile(`^version\.(Os|Arch)$`), ""},
	{regexp.MustCompile(`^(info|version)\.`), "type"},
}

func sdkSkip(p string) string {
	for _, r := range sdkRules {
		if r.re.MatchString(p) {
			return r.mode
		}
	}
	return ""
}
