package streams

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// DefaultDetachKeys is docker's detach sequence: ctrl-p, ctrl-q.
var DefaultDetachKeys = []byte{16, 17}

// ErrDetached is what an escape reader returns once it has read the
// detach sequence.
var ErrDetached = errors.New("read escape sequence")

// ParseDetachKeys reads docker's --detach-keys format: comma-separated
// keys, each a single character or ctrl-<letter or one of @[\]^_>. An
// empty string is the default sequence.
func ParseDetachKeys(s string) ([]byte, error) {
	if s == "" {
		return DefaultDetachKeys, nil
	}
	var out []byte
	const ctrls = "@abcdefghijklmnopqrstuvwxyz[\\]^_" // ctrl-@ is 0, ctrl-a 1, ...
	for _, k := range strings.Split(s, ",") {
		ctrl, isCtrl := strings.CutPrefix(strings.ToLower(k), "ctrl-")
		switch {
		case len(k) == 1:
			out = append(out, k[0])
		case isCtrl && len(ctrl) == 1 && strings.IndexByte(ctrls, ctrl[0]) >= 0:
			out = append(out, byte(strings.IndexByte(ctrls, ctrl[0])))
		default:
			return nil, fmt.Errorf("Invalid detach keys (%s) provided", s)
		}
	}
	return out, nil
}

// NewEscapeReader passes r on until the detach sequence keys appears in
// it; the sequence itself is not passed on (a partial match that fails
// is), and then Read returns ErrDetached.
func NewEscapeReader(r io.Reader, keys []byte) io.Reader {
	return &escapeReader{r: r, keys: keys}
}

type escapeReader struct {
	r        io.Reader
	keys     []byte
	held     int    // bytes of keys matched so far, not yet passed on
	pending  []byte // passed-on bytes that did not fit the caller's buffer
	buf, out []byte // reused between reads
	detached bool
}

func (e *escapeReader) Read(p []byte) (int, error) {
	if len(e.pending) > 0 {
		n := copy(p, e.pending)
		e.pending = e.pending[n:]
		return n, nil
	}
	if e.detached {
		return 0, ErrDetached
	}
	if cap(e.buf) < len(p) {
		e.buf = make([]byte, len(p))
	}
	n, err := e.r.Read(e.buf[:len(p)])
	out := e.out[:0]
	for _, b := range e.buf[:n] {
		if b != e.keys[e.held] {
			out = append(out, e.keys[:e.held]...) // a false start
			e.held = 0
		}
		if b == e.keys[e.held] {
			if e.held++; e.held == len(e.keys) {
				e.detached = true
				break
			}
			continue
		}
		out = append(out, b)
	}
	if err != nil && !e.detached {
		out = append(out, e.keys[:e.held]...)
		e.held = 0
	}
	c := copy(p, out)
	e.out = out
	// What did not fit is kept apart: out is reused by the next read.
	e.pending = append([]byte(nil), out[c:]...)
	if e.detached && c == 0 {
		return 0, ErrDetached
	}
	if err != nil && len(e.pending) > 0 {
		err = nil // give the rest first; the next Read reports the error again
	}
	return c, err
}
