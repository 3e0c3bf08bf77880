package server

import (
	"encoding/json"
	"net/http"
	"slices"
)

// Answers that depend on the API version the client asked for: the
// Engine API's version history (docs/engine.md lists each difference and
// where it is honoured). Today's shape is built once by the handlers; an
// older client gets it patched here, as generic JSON, into the shape of
// its version: fields that later versions dropped come back, with the
// values dockerd gave them then.

// asJSON is v as generic JSON, for patching.
func asJSON(v any) (map[string]any, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// applicable are the patches of the fixes whose version is newer than the
// request's (fix.before: the first version without it).
func applicable(r *http.Request, fixes []versionFix) []func(map[string]any) {
	var todo []func(map[string]any)
	for _, f := range fixes {
		if versionLess(apiVersion(r), f.before) {
			todo = append(todo, f.patch)
		}
	}
	return todo
}

// patched is v with the patches applied (v itself if there are none).
func patched(v any, todo []func(map[string]any)) (any, error) {
	if len(todo) == 0 {
		return v, nil
	}
	m, err := asJSON(v)
	if err != nil {
		return nil, err
	}
	for _, f := range todo {
		f(m)
	}
	return m, nil
}

// writeVersioned writes v in the shape of the request's API version.
func writeVersioned(w http.ResponseWriter, r *http.Request, v any, fixes ...versionFix) {
	out, err := patched(v, applicable(r, fixes))
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, out)
}

// writeVersionedList is writeVersioned for each object of a list.
func writeVersionedList[T any](w http.ResponseWriter, r *http.Request, list []T, fixes ...versionFix) {
	todo := applicable(r, fixes)
	out := make([]any, len(list))
	for i := range list {
		var err error
		if out[i], err = patched(list[i], todo); err != nil {
			writeError(w, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

type versionFix struct {
	before string
	patch  func(map[string]any)
}

// psAnnotations: before 1.46 a container's ps line had no
// HostConfig.Annotations.
var psAnnotations = versionFix{"1.46", func(m map[string]any) {
	if hc, ok := m["HostConfig"].(map[string]any); ok {
		delete(hc, "Annotations")
	}
}}

// untaggedNone: before 1.43 an image with neither tags nor digests
// listed "<none>:<none>" and "<none>@<none>".
var untaggedNone = versionFix{"1.43", func(m map[string]any) {
	tags, _ := m["RepoTags"].([]any)
	digests, _ := m["RepoDigests"].([]any)
	if len(tags) == 0 && len(digests) == 0 {
		m["RepoTags"], m["RepoDigests"] = []any{"<none>:<none>"}, []any{"<none>@<none>"}
	}
}}

// bridgeNf: before 1.50 info had BridgeNfIptables and BridgeNfIp6tables
// (always false since 1.48, in every version: the engine loads
// br_netfilter only where it needs it, as dockerd 28).
var bridgeNf = versionFix{"1.50", func(m map[string]any) {
	m["BridgeNfIptables"], m["BridgeNfIp6tables"] = false, false
}}

// commitExpected: before 1.49 info's commits had Expected (the same as
// ID).
var commitExpected = versionFix{"1.49", func(m map[string]any) {
	for _, k := range []string{"ContainerdCommit", "RuncCommit", "InitCommit"} {
		if c, ok := m[k].(map[string]any); ok {
			c["Expected"] = c["ID"]
		}
	}
}}

// virtualSize: before 1.44 images (list, inspect, system df) had
// VirtualSize, the same as Size.
var virtualSize = versionFix{"1.44", func(m map[string]any) {
	m["VirtualSize"] = m["Size"]
}}

// dfVirtualSize is virtualSize for the images of system df.
var dfVirtualSize = versionFix{"1.44", func(m map[string]any) {
	imgs, _ := m["Images"].([]any)
	for _, img := range imgs {
		if im, ok := img.(map[string]any); ok {
			virtualSize.patch(im)
		}
	}
}}

// imageContainerConfig: before 1.45 an image's inspect had Container
// (the ID of the container a commit came from, "" here) and
// ContainerConfig (that container's config; empty, as dockerd's for
// images it did not commit itself).
var imageContainerConfig = versionFix{"1.45", func(m map[string]any) {
	if _, ok := m["Container"]; !ok {
		m["Container"] = ""
	}
	if _, ok := m["ContainerConfig"]; !ok {
		m["ContainerConfig"] = emptyContainerConfig()
	}
}}

// imageConfigFields: before 1.50 an image's Config carried these
// container-only fields too, always empty.
var imageConfigFields = versionFix{"1.50", func(m map[string]any) {
	cfg, ok := m["Config"].(map[string]any)
	if !ok {
		return
	}
	for k, v := range map[string]any{"Hostname": "", "Domainname": "", "AttachStdin": false, "AttachStdout": false,
		"AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Image": ""} {
		if _, ok := cfg[k]; !ok {
			cfg[k] = v
		}
	}
}}

func emptyContainerConfig() map[string]any {
	return map[string]any{"Hostname": "", "Domainname": "", "User": "", "AttachStdin": false, "AttachStdout": false,
		"AttachStderr": false, "Tty": false, "OpenStdin": false, "StdinOnce": false, "Env": nil, "Cmd": nil,
		"Image": "", "Volumes": nil, "WorkingDir": "", "Entrypoint": nil, "OnBuild": nil, "Labels": nil}
}

// kernelMemory: before 1.42 a container's HostConfig always had
// KernelMemory and KernelMemoryTCP (0: tent sets neither).
var kernelMemory = versionFix{"1.42", func(m map[string]any) {
	if hc, ok := m["HostConfig"].(map[string]any); ok {
		hc["KernelMemory"], hc["KernelMemoryTCP"] = 0, 0
	}
}}

// shortIDAlias: before 1.45 a container's Aliases on a user-defined
// network held its short ID too (1.45 moved it to DNSNames, which only
// user-defined networks have).
var shortIDAlias = versionFix{"1.45", func(m map[string]any) {
	id, _ := m["Id"].(string)
	ns, _ := m["NetworkSettings"].(map[string]any)
	nets, _ := ns["Networks"].(map[string]any)
	if len(id) < 12 {
		return
	}
	short := id[:12]
	for _, v := range nets {
		ep, _ := v.(map[string]any)
		names, _ := ep["DNSNames"].([]any)
		aliases, _ := ep["Aliases"].([]any)
		if slices.Contains(names, any(short)) && !slices.Contains(aliases, any(short)) {
			ep["Aliases"] = append(aliases, short)
		}
	}
}}
