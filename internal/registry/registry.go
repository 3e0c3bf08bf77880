// Package registry talks to image registries over the OCI distribution
// protocol: it resolves and fetches images (manifests, indexes, blobs) and
// pushes blobs and manifests, with docker's auth flows (anonymous, basic,
// bearer tokens). The protocol's auth dance and manifest handling come
// from go-containerregistry; this package adds docker's rules on top:
// which registries may be spoken to over plain HTTP, docker's credentials
// header, and errors worded as docker words them.
package registry

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"

	"github.com/distribution/reference"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/errdefs"
)

// Auth is what a client sends in the X-Registry-Auth header (and the body
// of POST /auth): docker's AuthConfig.
type Auth struct {
	Username      string `json:"username,omitempty"`
	Password      string `json:"password,omitempty"`
	Auth          string `json:"auth,omitempty"` // base64 "user:password"
	ServerAddress string `json:"serveraddress,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

// DecodeAuthHeader decodes X-Registry-Auth (base64url JSON; empty: none).
func DecodeAuthHeader(h string) (Auth, error) {
	var a Auth
	if h == "" {
		return a, nil
	}
	b, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		// Some clients send it unpadded.
		if b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "=")); err != nil {
			return a, fmt.Errorf("invalid X-Registry-Auth header: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if err := json.Unmarshal(b, &a); err != nil {
		return a, fmt.Errorf("invalid X-Registry-Auth header: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return a, nil
}

// DecodeConfigHeader decodes X-Registry-Config (POST /build): base64url
// JSON of credentials by registry ("https://index.docker.io/v1/",
// "127.0.0.1:5000", ...).
func DecodeConfigHeader(h string) (map[string]Auth, error) {
	out := map[string]Auth{}
	if h == "" {
		return out, nil
	}
	b, err := base64.URLEncoding.DecodeString(h)
	if err != nil {
		if b, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(h, "=")); err != nil {
			return nil, fmt.Errorf("invalid X-Registry-Config header: %v: %w", err, errdefs.ErrInvalidArgument)
		}
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("invalid X-Registry-Config header: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return out, nil
}

// AuthFor picks the credentials of ref's registry from a set keyed as
// X-Registry-Config keys them (none: anonymous).
func AuthFor(auths map[string]Auth, ref string) Auth {
	named, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return Auth{}
	}
	domain := reference.Domain(named)
	for key, a := range auths {
		host := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(key, "https://"), "http://"), "/")
		host, _, _ = strings.Cut(host, "/")
		if host == domain || (domain == "docker.io" && (host == "index.docker.io" || host == "registry-1.docker.io")) {
			return a
		}
	}
	return Auth{}
}

func (a Auth) authenticator() authn.Authenticator {
	c := authn.AuthConfig{Username: a.Username, Password: a.Password, Auth: a.Auth,
		IdentityToken: a.IdentityToken, RegistryToken: a.RegistryToken}
	if c == (authn.AuthConfig{}) {
		return authn.Anonymous
	}
	return authn.FromConfig(c)
}

// Client reaches registries.
type Client struct {
	insecureHosts map[string]bool
	insecureNets  []*net.IPNet
	secure, loose http.RoundTripper // TLS verified / not (insecure registries)
}

// New returns a client. insecure lists the registries (host[:port], or
// CIDR ranges) that may be reached over plain HTTP or unverified TLS,
// like dockerd's --insecure-registry; loopback ones always may.
func New(insecure []string) (*Client, error) {
	c := &Client{insecureHosts: map[string]bool{}}
	for _, s := range insecure {
		if _, n, err := net.ParseCIDR(s); err == nil {
			c.insecureNets = append(c.insecureNets, n)
			continue
		}
		if strings.Contains(s, "://") || strings.Contains(s, "/") {
			return nil, fmt.Errorf("insecure registry %q: want host[:port] or a CIDR range", s)
		}
		c.insecureHosts[s] = true
	}
	base := http.DefaultTransport.(*http.Transport).Clone()
	loose := base.Clone()
	loose.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	c.secure = &guard{c: c, rt: base}
	c.loose = &guard{c: c, rt: loose}
	return c, nil
}

// Insecure tells whether registry host (with its port, if any) may be
// reached without TLS: loopback, or listed as insecure.
func (c *Client) Insecure(host string) bool {
	if c.insecureHosts[host] {
		return true
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	if ip == nil {
		return false
	}
	if ip.IsLoopback() {
		return true
	}
	for _, n := range c.insecureNets {
		if n.Contains(ip) {
			return true
		}
	}
	return false
}

// guard refuses plain HTTP to registries that are not allowed it (the
// protocol library would fall back to HTTP for private addresses too).
type guard struct {
	c  *Client
	rt http.RoundTripper
}

func (g *guard) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme == "http" && !g.c.Insecure(r.URL.Host) {
		return nil, fmt.Errorf("%s %q: refusing plain HTTP to a registry that is not insecure (start the daemon with --insecure-registry %s to allow it)", r.Method, r.URL.Redacted(), r.URL.Host)
	}
	return g.rt.RoundTrip(r)
}

// ParseReference parses a full reference ("docker.io/library/busybox:latest",
// "127.0.0.1:5000/app@sha256:...").
func (c *Client) ParseReference(ref string) (name.Reference, error) {
	var opts []name.Option
	if host, _, _ := strings.Cut(ref, "/"); c.Insecure(host) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	return r, nil
}

func (c *Client) transportFor(reg name.Registry) http.RoundTripper {
	if c.Insecure(reg.RegistryStr()) {
		return c.loose
	}
	return c.secure
}

// Image is an image resolved in a registry, ready to be fetched.
type Image struct {
	// Digest is the digest the reference resolved to (for a multi-platform
	// tag: the index's), and Raw that manifest or index as served.
	Digest digest.Digest
	Raw    []byte
	// Manifest is the platform's image manifest; Config its config blob.
	Manifest []byte
	Config   []byte
	Layers   []Layer
	img      v1.Image
}

// Layer is one layer of a resolved image.
type Layer struct {
	Digest    digest.Digest // of the blob as served
	DiffID    digest.Digest // of the uncompressed tar
	Size      int64
	MediaType string
}

// Resolve finds ref in its registry and reads its manifest and config;
// for an index it picks the platform's image ("linux/amd64" form, "" for
// this machine's).
func (c *Client) Resolve(ctx context.Context, ref name.Reference, auth Auth, platform v1.Platform) (*Image, error) {
	opts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(auth.authenticator()),
		remote.WithTransport(c.transportFor(ref.Context().Registry)), remote.WithPlatform(platform)}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, pullError(ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		if strings.Contains(err.Error(), "no child with platform") {
			return nil, fmt.Errorf("no matching manifest for %s in the manifest list entries: %w", platformString(platform), errdefs.ErrNotFound)
		}
		return nil, pullError(ref, err)
	}
	out := &Image{Digest: digest.Digest(desc.Digest.String()), Raw: desc.Manifest, img: img}
	if out.Manifest, err = img.RawManifest(); err != nil {
		return nil, pullError(ref, err)
	}
	if out.Config, err = img.RawConfigFile(); err != nil {
		return nil, pullError(ref, err)
	}
	m, err := img.Manifest()
	if err != nil {
		return nil, pullError(ref, err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, pullError(ref, err)
	}
	if len(cf.RootFS.DiffIDs) != len(m.Layers) {
		return nil, fmt.Errorf("%s: the config lists %d layers, the manifest %d: %w", ref, len(cf.RootFS.DiffIDs), len(m.Layers), errdefs.ErrInvalidArgument)
	}
	for i, l := range m.Layers {
		out.Layers = append(out.Layers, Layer{Digest: digest.Digest(l.Digest.String()),
			DiffID: digest.Digest(cf.RootFS.DiffIDs[i].String()), Size: l.Size, MediaType: string(l.MediaType)})
	}
	return out, nil
}

// Fetch opens layer l's blob. The stream fails at its end if the content
// does not have the layer's digest.
func (img *Image) Fetch(l Layer) (io.ReadCloser, error) {
	h, err := v1.NewHash(l.Digest.String())
	if err != nil {
		return nil, err
	}
	layer, err := img.img.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return layer.Compressed()
}

// ParsePlatform reads "os[/arch[/variant]]" ("" is this machine's).
func ParsePlatform(s string) (v1.Platform, error) {
	p := v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	if s == "" {
		return p, nil
	}
	parsed, err := v1.ParsePlatform(s)
	if err != nil || parsed.OS == "" {
		return p, fmt.Errorf("invalid platform %q: want os[/arch[/variant]]: %w", s, errdefs.ErrInvalidArgument)
	}
	if parsed.Architecture == "" {
		parsed.Architecture = runtime.GOARCH
	}
	return *parsed, nil
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// pullError words a registry error as docker does.
func pullError(ref name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.ManifestUnknownErrorCode:
				return fmt.Errorf("manifest for %s not found: manifest unknown: %s: %w", ref, d.Message, errdefs.ErrNotFound)
			case transport.NameUnknownErrorCode, transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %s: %w", ref.Context(), d.Message, errdefs.ErrNotFound)
			}
		}
		switch te.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("manifest for %s not found: %w", ref, errdefs.ErrNotFound)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("pull access denied for %s, repository does not exist or may require 'docker login': %w", ref.Context(), errdefs.ErrNotFound)
		}
	}
	return fmt.Errorf("pull %s: %w", ref, err)
}

// Login checks credentials against a registry ("" or docker's
// "https://index.docker.io/v1/" mean Docker Hub).
func (c *Client) Login(ctx context.Context, auth Auth) error {
	server := auth.ServerAddress
	if server == "" || strings.Contains(server, "index.docker.io") {
		server = name.DefaultRegistry
	}
	if u, err := url.Parse(server); err == nil && u.Host != "" {
		server = u.Host
	}
	var opts []name.Option
	if c.Insecure(server) {
		opts = append(opts, name.Insecure)
	}
	reg, err := name.NewRegistry(server, opts...)
	if err != nil {
		return fmt.Errorf("invalid registry address %q: %v: %w", auth.ServerAddress, err, errdefs.ErrInvalidArgument)
	}
	rt, err := transport.NewWithContext(ctx, reg, auth.authenticator(), c.transportFor(reg), []string{reg.Scope(transport.PullScope)})
	if err != nil {
		return loginError(err)
	}
	// Bearer registries have checked the password by now (the token
	// service refuses a wrong one); basic ones check it on a request.
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, reg.Scheme()+"://"+reg.RegistryStr()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return loginError(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("Get %q: unauthorized: incorrect username or password: %w", req.URL.String(), errdefs.ErrUnauthorized)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("login to %s: unexpected status %s", reg.RegistryStr(), resp.Status)
	}
	return nil
}

func loginError(err error) error {
	var te *transport.Error
	if errors.As(err, &te) && (te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden) {
		return fmt.Errorf("unauthorized: incorrect username or password: %w", errdefs.ErrUnauthorized)
	}
	return fmt.Errorf("login: %w", err)
}
