package cli

import "strings"

// imageRef is an image reference as typed, split and normalized the way
// docker's client does before calling the Engine API ("busybox" is
// docker.io/library/busybox). It does not validate: the daemon parses
// every name it is sent and answers a malformed one with docker's
// "invalid reference format" error.
//
// Why not github.com/distribution/reference, which the daemon uses: its
// package initialisation compiles a dozen regular expressions, ~3 ms of
// every tent command's start-up here (a fifth of the client's page faults,
// measured with perf), for what the client needs: a split and a prefix.
type imageRef struct {
	domain, path, tag, digest string
}

// hubDomain is Docker Hub's canonical registry name.
const hubDomain = "docker.io"

func splitRef(s string) imageRef {
	var r imageRef
	if i := strings.IndexByte(s, '@'); i >= 0 {
		s, r.digest = s[:i], s[i+1:]
	}
	if i := strings.LastIndexByte(s, ':'); i > strings.LastIndexByte(s, '/') {
		s, r.tag = s[:i], s[i+1:]
	}
	// The first component is a registry when it looks like a host
	// name: a dot, a port, "localhost", or upper case (which
	// repository paths cannot have).
	first, rest, ok := strings.Cut(s, "/")
	if ok && (strings.ContainsAny(first, ".:") || first == "localhost" || strings.ToLower(first) != first) {
		r.domain, r.path = first, rest
	} else {
		r.domain, r.path = hubDomain, s
	}
	if r.domain == "index.docker.io" {
		r.domain = hubDomain
	}
	if r.domain == hubDomain && !strings.Contains(r.path, "/") {
		r.path = "library/" + r.path
	}
	return r
}

// name is the repository's full name: docker.io/library/busybox.
func (r imageRef) name() string { return r.domain + "/" + r.path }

// withDefaultTag gives a reference without tag or digest docker's
// default tag.
func (r imageRef) withDefaultTag() imageRef {
	if r.tag == "" && r.digest == "" {
		r.tag = "latest"
	}
	return r
}

// String is the full reference: docker.io/library/busybox:latest.
func (r imageRef) String() string {
	s := r.name()
	if r.tag != "" {
		s += ":" + r.tag
	}
	if r.digest != "" {
		s += "@" + r.digest
	}
	return s
}
