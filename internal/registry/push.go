package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/errdefs"
)

// Pusher writes blobs and manifests to one repository.
type Pusher struct {
	repo name.Repository
	http *http.Client
	base string // scheme://host/v2/repo
}

// Pusher returns a Pusher for ref's repository, authenticated for pushing
// there and for pulling from mountFrom (other repositories of the same
// registry that blobs may be mounted from).
func (c *Client) Pusher(ctx context.Context, ref name.Reference, auth Auth, mountFrom []string) (*Pusher, error) {
	repo := ref.Context()
	scopes := []string{repo.Scope(transport.PushScope)}
	for _, from := range mountFrom {
		scopes = append(scopes, "repository:"+from+":pull")
	}
	rt, err := transport.NewWithContext(ctx, repo.Registry, auth.authenticator(), c.transportFor(repo.Registry), scopes)
	if err != nil {
		return nil, pushError(repo, err)
	}
	return &Pusher{repo: repo, http: &http.Client{Transport: rt},
		base: repo.Registry.Scheme() + "://" + repo.RegistryStr() + "/v2/" + repo.RepositoryStr()}, nil
}

func (p *Pusher) do(ctx context.Context, method, u string, body io.Reader, size int64, header map[string]string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := p.http.Do(req)
	if err != nil {
		return nil, pushError(p.repo, err)
	}
	return resp, nil
}

// check turns an unexpected status into a docker-worded error.
func (p *Pusher) check(resp *http.Response, want ...int) error {
	for _, w := range want {
		if resp.StatusCode == w {
			return nil
		}
	}
	return pushError(p.repo, transport.CheckError(resp, want...))
}

// Exists tells whether the repository has blob d.
func (p *Pusher) Exists(ctx context.Context, d digest.Digest) (bool, error) {
	resp, err := p.do(ctx, http.MethodHead, p.base+"/blobs/"+d.String(), nil, 0, nil)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, p.check(resp, http.StatusOK, http.StatusNotFound)
}

// Mount asks the registry to link blob d from repository from (same
// registry) instead of uploading it; false when it would not.
func (p *Pusher) Mount(ctx context.Context, d digest.Digest, from string) (bool, error) {
	q := url.Values{"mount": {d.String()}, "from": {from}}
	resp, err := p.do(ctx, http.MethodPost, p.base+"/blobs/uploads/?"+q.Encode(), nil, 0, nil)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusCreated:
		return true, nil
	case http.StatusAccepted: // an upload session instead: drop it
		if loc, err := location(resp); err == nil {
			if r, err := p.do(ctx, http.MethodDelete, loc.String(), nil, 0, nil); err == nil {
				r.Body.Close()
			}
		}
		return false, nil
	}
	return false, p.check(resp, http.StatusCreated, http.StatusAccepted)
}

// Upload sends blob d (size bytes from r) in one request.
func (p *Pusher) Upload(ctx context.Context, d digest.Digest, size int64, r io.Reader) error {
	u, err := p.startUpload(ctx)
	if err != nil {
		return err
	}
	return p.finishUpload(ctx, u, d, r, size)
}

// UploadStream sends a blob whose digest and size are known only at its
// end (a layer being compressed): streamed in one chunked PATCH, then
// closed with the digest it hashed to.
func (p *Pusher) UploadStream(ctx context.Context, r io.Reader) (digest.Digest, int64, error) {
	u, err := p.startUpload(ctx)
	if err != nil {
		return "", 0, err
	}
	dg := digest.Canonical.Digester()
	n := &countingWriter{}
	resp, err := p.do(ctx, http.MethodPatch, u.String(), io.TeeReader(r, io.MultiWriter(dg.Hash(), n)), -1,
		map[string]string{"Content-Type": "application/octet-stream"})
	if err != nil {
		return "", 0, err
	}
	resp.Body.Close()
	if err := p.check(resp, http.StatusAccepted, http.StatusNoContent); err != nil {
		return "", 0, err
	}
	if u, err = location(resp); err != nil {
		return "", 0, err
	}
	d := dg.Digest()
	return d, n.n, p.finishUpload(ctx, u, d, nil, 0)
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(b []byte) (int, error) {
	c.n += int64(len(b))
	return len(b), nil
}

// startUpload opens an upload session and returns where to send to.
func (p *Pusher) startUpload(ctx context.Context) (*url.URL, error) {
	resp, err := p.do(ctx, http.MethodPost, p.base+"/blobs/uploads/", nil, 0, nil)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	if err := p.check(resp, http.StatusAccepted); err != nil {
		return nil, err
	}
	return location(resp)
}

// finishUpload closes an upload session with blob d's last (or only)
// bytes.
func (p *Pusher) finishUpload(ctx context.Context, u *url.URL, d digest.Digest, r io.Reader, size int64) error {
	q := u.Query()
	q.Set("digest", d.String())
	u.RawQuery = q.Encode()
	if r == nil {
		r = http.NoBody
	}
	resp, err := p.do(ctx, http.MethodPut, u.String(), r, size,
		map[string]string{"Content-Type": "application/octet-stream", "Content-Length": strconv.FormatInt(size, 10)})
	if err != nil {
		return err
	}
	resp.Body.Close()
	return p.check(resp, http.StatusCreated)
}

// PutManifest stores a manifest under tag (or digest) and returns the
// digest the registry gives it.
func (p *Pusher) PutManifest(ctx context.Context, tag, mediaType string, raw []byte) (digest.Digest, error) {
	resp, err := p.do(ctx, http.MethodPut, p.base+"/manifests/"+tag, strings.NewReader(string(raw)), int64(len(raw)),
		map[string]string{"Content-Type": mediaType})
	if err != nil {
		return "", err
	}
	resp.Body.Close()
	if err := p.check(resp, http.StatusCreated, http.StatusOK); err != nil {
		return "", err
	}
	d := digest.FromBytes(raw)
	if got := resp.Header.Get("Docker-Content-Digest"); got != "" && got != d.String() {
		return "", fmt.Errorf("registry stored the manifest as %s, expected %s", got, d)
	}
	return d, nil
}

// location resolves an upload response's Location header.
func location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, fmt.Errorf("registry answered %s without a Location", resp.Status)
	}
	return resp.Request.URL.Parse(loc)
}

// pushError words a registry error as docker does.
func pushError(repo name.Repository, err error) error {
	if err == nil {
		return nil
	}
	var te *transport.Error
	if errors.As(err, &te) {
		for _, d := range te.Errors {
			switch d.Code {
			case transport.UnauthorizedErrorCode, transport.DeniedErrorCode:
				return fmt.Errorf("denied: requested access to the resource is denied: %w", errdefs.ErrUnauthorized)
			}
		}
		if te.StatusCode == http.StatusUnauthorized || te.StatusCode == http.StatusForbidden {
			return fmt.Errorf("unauthorized: authentication required to push to %s: %w", repo, errdefs.ErrUnauthorized)
		}
	}
	return err
}
