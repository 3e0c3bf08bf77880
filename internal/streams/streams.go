// Package streams is docker's multiplexed stream format: each chunk of a
// container's output is preceded by an 8-byte header (stream kind, three
// zero bytes, big-endian length), so that stdout and stderr can share one
// connection when there is no terminal.
package streams

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// The stream kinds, as in the header's first byte.
const (
	Stdin  byte = 0
	Stdout byte = 1
	Stderr byte = 2
	System byte = 3
)

// Name returns the json-file stream name of a kind.
func Name(kind byte) string {
	if kind == Stderr {
		return "stderr"
	}
	return "stdout"
}

// Kind returns the kind of a json-file stream name.
func Kind(name string) byte {
	if name == "stderr" {
		return Stderr
	}
	return Stdout
}

// Writer writes chunks to w, framed unless raw (a terminal's single
// stream). It is safe for concurrent use.
type Writer struct {
	mu  sync.Mutex
	w   io.Writer
	raw bool
}

// NewWriter returns a Writer on w.
func NewWriter(w io.Writer, raw bool) *Writer { return &Writer{w: w, raw: raw} }

// Write sends p as output of stream kind.
func (s *Writer) Write(kind byte, p []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.raw {
		_, err := s.w.Write(p)
		return err
	}
	var hdr [8]byte
	hdr[0] = kind
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(p)))
	if _, err := s.w.Write(append(hdr[:], p...)); err != nil {
		return err
	}
	return nil
}

// Demux copies a framed stream from r to stdout and stderr until r ends.
func Demux(stdout, stderr io.Writer, r io.Reader) error {
	var hdr [8]byte
	buf := make([]byte, 32*1024)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err == io.EOF {
				return nil
			}
			return err
		}
		var w io.Writer
		switch hdr[0] {
		case Stdin, Stdout:
			w = stdout
		case Stderr, System:
			w = stderr
		default:
			return fmt.Errorf("streams: bad stream kind %d", hdr[0])
		}
		n := int(binary.BigEndian.Uint32(hdr[4:]))
		for n > 0 {
			m := min(n, len(buf))
			if _, err := io.ReadFull(r, buf[:m]); err != nil {
				return err
			}
			if _, err := w.Write(buf[:m]); err != nil {
				return err
			}
			n -= m
		}
	}
}

// Pump reads every source until it ends (EOF, or EIO from a pty whose
// other side is gone), handing each chunk to emit as output of kind Stdout
// (the first source) or Stderr (the second). The returned channel closes
// once all sources have ended.
func Pump(sources []io.Reader, emit func(kind byte, p []byte)) <-chan struct{} {
	var wg sync.WaitGroup
	for i, src := range sources {
		kind := Stdout
		if i == 1 {
			kind = Stderr
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 32*1024)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					emit(kind, buf[:n])
				}
				if err != nil {
					return
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done
}
