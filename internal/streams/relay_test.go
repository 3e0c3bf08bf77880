package streams

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func framed(t *testing.T) *bytes.Buffer {
	var b bytes.Buffer
	w := NewWriter(&b, false)
	w.Write(Stdout, []byte("out "))
	w.Write(Stderr, []byte("err"))
	return &b
}

// TestRelay: an exec's stream in each form to a client that asked for
// the same or the other.
func TestRelay(t *testing.T) {
	var raw bytes.Buffer
	Relay(&raw, framed(t), false, true)
	if raw.String() != "out err" {
		t.Errorf("framed to raw: %q", raw.String())
	}
	var same bytes.Buffer
	Relay(&same, strings.NewReader("as is"), true, true)
	if same.String() != "as is" {
		t.Errorf("raw to raw: %q", same.String())
	}
	var fr bytes.Buffer
	Relay(&fr, strings.NewReader("tty"), true, false)
	var out, errOut bytes.Buffer
	if Demux(&out, &errOut, &fr); out.String() != "tty" || errOut.Len() != 0 {
		t.Errorf("a terminal's output framed: %q %q", out.String(), errOut.String())
	}
}

type failing struct{ n int }

func (f *failing) Write(p []byte) (int, error) {
	if f.n++; f.n > 1 {
		return 0, errors.New("client gone")
	}
	return len(p), nil
}

func TestCutWriter(t *testing.T) {
	cw := NewCutWriter(&failing{})
	cw.Write([]byte("a"))
	select {
	case <-cw.Gone():
		t.Fatal("gone after a good write")
	default:
	}
	if n, err := cw.Write([]byte("bc")); n != 2 || err != nil {
		t.Errorf("a failed write is taken: %d %v", n, err)
	}
	<-cw.Gone()
	cw.Cut() // again: no panic
	var b bytes.Buffer
	cut := NewCutWriter(&b)
	cut.Cut()
	cut.Write([]byte("dropped"))
	if b.Len() != 0 {
		t.Errorf("written after the cut: %q", b.String())
	}
}

func TestNotifyDetach(t *testing.T) {
	detached := make(chan struct{})
	r := NotifyDetach(NewEscapeReader(strings.NewReader("ls\x10\x11more"), []byte{16, 17}), detached)
	b, err := io.ReadAll(r)
	if !errors.Is(err, ErrDetached) || string(b) != "ls" {
		t.Errorf("read %q %v", b, err)
	}
	<-detached
}
