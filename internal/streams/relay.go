package streams

import (
	"errors"
	"io"
	"sync"
)

// Relay copies an exec's stream (raw if the exec has a terminal, else
// framed) to out in the form the client asked for.
func Relay(out io.Writer, stream io.Reader, ttyIn, rawOut bool) {
	switch {
	case ttyIn == rawOut:
		io.Copy(out, stream)
	case rawOut: // framed to raw: both streams, as they come
		Demux(out, out, stream)
	default: // a terminal's output, framed as stdout
		w := NewWriter(out, false)
		buf := make([]byte, 32*1024)
		for {
			n, err := stream.Read(buf)
			if n > 0 && w.Write(Stdout, buf[:n]) != nil {
				return
			}
			if err != nil {
				return
			}
		}
	}
}

// detachNotice closes detached when the escape reader it wraps meets the
// detach keys.
type detachNotice struct {
	r        io.Reader
	detached chan struct{}
	once     sync.Once
}

// NotifyDetach wraps an escape reader (NewEscapeReader): detached is
// closed when it meets the detach keys.
func NotifyDetach(r io.Reader, detached chan struct{}) io.Reader {
	return &detachNotice{r: r, detached: detached}
}

func (d *detachNotice) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	if errors.Is(err, ErrDetached) {
		d.once.Do(func() { close(d.detached) })
	}
	return n, err
}

// CutWriter writes to w until it is cut or a write fails (then Gone is
// closed), and from then on drops what it is given: the process it
// relays for goes on.
type CutWriter struct {
	mu   sync.Mutex
	w    io.Writer
	gone chan struct{}
}

// NewCutWriter writes to w.
func NewCutWriter(w io.Writer) *CutWriter { return &CutWriter{w: w, gone: make(chan struct{})} }

func (c *CutWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.w == nil {
		return len(p), nil
	}
	if _, err := c.w.Write(p); err != nil {
		c.w = nil
		close(c.gone)
	}
	return len(p), nil
}

// Cut stops the writes to w.
func (c *CutWriter) Cut() {
	c.mu.Lock()
	if c.w != nil {
		c.w = nil
		close(c.gone)
	}
	c.mu.Unlock()
}

// Gone is closed once writes to w have stopped.
func (c *CutWriter) Gone() <-chan struct{} { return c.gone }
