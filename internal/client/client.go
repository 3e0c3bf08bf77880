// Package client is a small Engine API client over a unix socket or TCP,
// used by the tent CLI. It speaks the same wire types as the server
// (github.com/moby/moby/api).
package client

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults of the daemon's locations (shared by the CLI and tentd).
const (
	DefaultDataRoot = "/var/lib/tent"
	DefaultExecRoot = "/run/tent"
	DefaultHost     = "unix:///run/tent/tent.sock"
)

// APIVersion is the version the client asks for.
const APIVersion = "1.50"

// Client talks to one daemon.
type Client struct {
	dial func(ctx context.Context) (net.Conn, error)
	http *http.Client
}

// New returns a client for host (unix:///path or tcp://host:port).
func New(host string) (*Client, error) {
	proto, addr, ok := strings.Cut(host, "://")
	if !ok || (proto != "unix" && proto != "tcp") {
		return nil, fmt.Errorf("invalid host %q: want unix:///path or tcp://host:port", host)
	}
	c := &Client{dial: func(ctx context.Context) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, proto, addr)
	}}
	c.http = &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) { return c.dial(ctx) },
	}}
	return c, nil
}

// Error is an error answer of the daemon.
type Error struct {
	Status  int
	Message string
}

func (e *Error) Error() string { return e.Message }

// StatusOf returns the HTTP status of an API error (0 for other errors).
func StatusOf(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func apiURL(path string, q url.Values) string {
	u := "http://tent/v" + APIVersion + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Do sends a request and returns the response of a 2xx (or 304) answer;
// other answers become *Error.
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body io.Reader, contentType string) (*http.Response, error) {
	h := http.Header{}
	if contentType != "" {
		h.Set("Content-Type", contentType)
	}
	return c.DoHeader(ctx, method, path, q, body, h)
}

// DoHeader is Do with request headers of the caller's choosing.
func (c *Client) DoHeader(ctx context.Context, method, path string, q url.Values, body io.Reader, h http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, apiURL(path, q), body)
	if err != nil {
		return nil, err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the tent daemon: %w", err)
	}
	return answer(resp)
}

// answer returns resp if it is a 2xx (or 304), else its *Error.
func answer(resp *http.Response) (*http.Response, error) {
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		var m struct{ Message string }
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, &m) != nil || m.Message == "" {
			m.Message = strings.TrimSpace(string(b))
		}
		return nil, &Error{Status: resp.StatusCode, Message: m.Message}
	}
	return resp, nil
}

// Stream sends a POST whose body write produces, from the caller's
// goroutine, on a connection of its own, and returns the answer as Do
// does (its body closes the connection). net/http's Transport writes a
// body from a goroutine of its own, which the producer must hand every
// piece to through a pipe: a build's context, ~120 files, took two
// goroutine hand-offs per 32 KiB. An error of write ends the body short
// and is returned once the daemon has answered.
//
// header is the request's own (Content-Type and the like). With
// "Expect: 100-continue" in it the body is offered first: it is written
// only once the daemon answers 100 Continue (or has not answered within
// a second, as RFC 9110 lets a client do); if the daemon answers
// without it, that is the answer and the body is never written.
func (c *Client) Stream(ctx context.Context, path string, q url.Values, header http.Header, write func(w io.Writer) error) (*http.Response, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot connect to the tent daemon: %w", err)
	}
	u, _ := url.Parse(apiURL(path, q))
	cw := bufio.NewWriterSize(conn, 1<<20)
	fmt.Fprintf(cw, "POST %s HTTP/1.1\r\nHost: tent\r\nUser-Agent: tent\r\nTransfer-Encoding: chunked\r\n", u.RequestURI())
	header.Write(cw)
	cw.WriteString("\r\n")
	br := bufio.NewReader(conn)
	req := &http.Request{Method: http.MethodPost}
	if header.Get("Expect") == "100-continue" {
		if err := cw.Flush(); err != nil {
			conn.Close()
			return nil, err
		}
		conn.SetReadDeadline(time.Now().Add(time.Second))
		resp, err := http.ReadResponse(br, req)
		conn.SetReadDeadline(time.Time{})
		var ne net.Error
		switch {
		case err == nil && resp.StatusCode == http.StatusContinue:
		case err == nil: // the answer, without the body
			resp.Body = connBody{resp.Body, conn}
			return answer(resp)
		case errors.As(err, &ne) && ne.Timeout() && br.Buffered() == 0:
		default:
			conn.Close()
			return nil, fmt.Errorf("the tent daemon's answer: %w", err)
		}
	}
	chunks := httputil.NewChunkedWriter(cw)
	body := bufio.NewWriterSize(chunks, 256<<10) // chunks of 256 KiB
	werr := write(body)
	if werr == nil {
		werr = body.Flush()
	}
	if werr == nil {
		chunks.Close()
		cw.WriteString("\r\n")
		werr = cw.Flush()
	}
	if werr != nil {
		// A body cut short: the daemon reads its end and answers.
		if hc, ok := conn.(interface{ CloseWrite() error }); ok {
			hc.CloseWrite()
		} else {
			conn.Close()
			return nil, werr
		}
	}
	resp, err := http.ReadResponse(br, req)
	for err == nil && resp.StatusCode == http.StatusContinue { // one that came late
		resp, err = http.ReadResponse(br, req)
	}
	if err != nil {
		conn.Close()
		if werr != nil {
			return nil, werr
		}
		return nil, fmt.Errorf("the tent daemon's answer: %w", err)
	}
	resp.Body = connBody{resp.Body, conn}
	// The daemon's error tells more than the connection it closed; a
	// producer's own error more than the daemon's about a short body.
	lost := errors.Is(werr, syscall.EPIPE) || errors.Is(werr, syscall.ECONNRESET)
	if resp, err = answer(resp); err != nil {
		if werr != nil && !lost {
			return nil, werr
		}
		return nil, err
	}
	if werr != nil {
		resp.Body.Close()
		return nil, werr
	}
	return resp, nil
}

// connBody is a response body that closes its connection with it.
type connBody struct {
	io.ReadCloser
	conn net.Conn
}

func (b connBody) Close() error {
	b.ReadCloser.Close()
	return b.conn.Close()
}

// JSON sends in (if not nil) as JSON and decodes the answer into out (if
// not nil).
func (c *Client) JSON(ctx context.Context, method, path string, q url.Values, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = strings.NewReader(string(b)), "application/json"
	}
	resp, err := c.Do(ctx, method, path, q, body, ctype)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out != nil && resp.StatusCode != http.StatusNoContent && resp.StatusCode != http.StatusNotModified {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Ping reports whether the daemon answers within timeout.
func (c *Client) Ping(timeout time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	resp, err := c.Do(ctx, http.MethodGet, "/_ping", nil, nil, "")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

// Hijack sends a request that takes over the connection (attach, exec
// start) and returns the connection and a reader of what follows the
// response headers.
func (c *Client) Hijack(ctx context.Context, path string, q url.Values, body any) (net.Conn, *bufio.Reader, error) {
	conn, err := c.dial(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("cannot connect to the tent daemon: %w", err)
	}
	var b []byte
	if body != nil {
		if b, err = json.Marshal(body); err != nil {
			conn.Close()
			return nil, nil, err
		}
	}
	u := apiURL(path, q)
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(string(b)))
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Connection", "Upgrade")
	req.Header.Set("Upgrade", "tcp")
	if err := req.Write(conn); err != nil {
		conn.Close()
		return nil, nil, err
	}
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols && resp.StatusCode != http.StatusOK {
		defer conn.Close()
		var m struct{ Message string }
		json.NewDecoder(resp.Body).Decode(&m)
		return nil, nil, &Error{Status: resp.StatusCode, Message: m.Message}
	}
	return conn, br, nil
}

// Bulk is a request body for a bulk upload (a cp, an image load, a build
// context): it goes out in chunks of up to 1 MiB, each one write to the
// socket. net/http sends a chunked body as its reads come, one write per
// read, and an archive's producer hands out pieces of 512 bytes to
// 32 KiB; never for a stream someone types into, which it would hold back.
func Bulk(r io.Reader) io.Reader { return bulk{r} }

type bulk struct{ r io.Reader }

func (b bulk) Read(p []byte) (int, error) { return b.r.Read(p) }

// WriteTo is what net/http's body copy uses when there is one.
func (b bulk) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 1<<20)
	var total int64
	for {
		n, err := io.ReadFull(b.r, buf)
		if n > 0 {
			m, werr := w.Write(buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		switch err {
		case nil:
		case io.EOF, io.ErrUnexpectedEOF:
			return total, nil
		default:
			return total, err
		}
	}
}
