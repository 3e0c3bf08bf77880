package wire

import (
	"bytes"
	"testing"
)

func TestFrames(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	big := bytes.Repeat([]byte("x"), MaxFrame+10)
	for _, f := range []struct {
		kind byte
		p    []byte
	}{{Start, nil}, {Stdout, []byte("hello\n")}, {Stdin, big}} {
		if err := w.Write(f.kind, f.p); err != nil {
			t.Fatal(err)
		}
	}
	want := []struct {
		kind byte
		n    int
	}{{Start, 0}, {Stdout, 6}, {Stdin, MaxFrame}, {Stdin, 10}}
	for _, wf := range want {
		kind, p, err := Read(&b)
		if err != nil || kind != wf.kind || len(p) != wf.n {
			t.Fatalf("frame %c %d: got %c %d %v", wf.kind, wf.n, kind, len(p), err)
		}
	}
	if _, _, err := Read(&b); err == nil {
		t.Error("read past the end")
	}
	b.Write([]byte{Stdout, 0xff, 0, 0, 0})
	if _, _, err := Read(&b); err == nil {
		t.Error("an oversized frame was taken")
	}
}
