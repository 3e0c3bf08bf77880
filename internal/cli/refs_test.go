package cli

import (
	"strings"
	"testing"
)

func TestSplitRef(t *testing.T) {
	for in, want := range map[string]struct{ name, full string }{
		"busybox":                         {"docker.io/library/busybox", "docker.io/library/busybox"},
		"busybox:1.36":                    {"docker.io/library/busybox", "docker.io/library/busybox:1.36"},
		"me/app:v2":                       {"docker.io/me/app", "docker.io/me/app:v2"},
		"docker.io/busybox":               {"docker.io/library/busybox", "docker.io/library/busybox"},
		"index.docker.io/me/app":          {"docker.io/me/app", "docker.io/me/app"},
		"localhost/app":                   {"localhost/app", "localhost/app"},
		"127.0.0.1:5000/a/b:1":            {"127.0.0.1:5000/a/b", "127.0.0.1:5000/a/b:1"},
		"host:5000/app@sha256:abc":        {"host:5000/app", "host:5000/app@sha256:abc"},
		"host:5000/app:1@sha256:abc":      {"host:5000/app", "host:5000/app:1@sha256:abc"},
		"Registry/app":                    {"Registry/app", "Registry/app"},
		"registry.example.com/team/app:x": {"registry.example.com/team/app", "registry.example.com/team/app:x"},
	} {
		r := splitRef(in)
		if r.name() != want.name || r.String() != want.full {
			t.Errorf("splitRef(%q): name %q, full %q; want %q, %q", in, r.name(), r.String(), want.name, want.full)
		}
	}
	if got := splitRef("busybox").withDefaultTag().String(); got != "docker.io/library/busybox:latest" {
		t.Errorf("default tag: %q", got)
	}
	if got := splitRef("a@sha256:abc").withDefaultTag().String(); got != "docker.io/library/a@sha256:abc" {
		t.Errorf("a digest takes no default tag: %q", got)
	}
}

func TestVerb(t *testing.T) {
	for args, want := range map[string]string{
		"run --rm busybox":                       "run",
		"-H unix:///x.sock run busybox":          "run",
		"--host unix:///x.sock ps -a":            "ps",
		"-H=unix:///x.sock images":               "images",
		"--help":                                 "",
		"":                                       "",
		"--host=tcp://h:2375 container ls":       "container",
		"-H unix:///x.sock --help volume create": "volume",
	} {
		if got := verb(strings.Fields(args)); got != want {
			t.Errorf("verb(%q) = %q, want %q", args, got, want)
		}
	}
}
