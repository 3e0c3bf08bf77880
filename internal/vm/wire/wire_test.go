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
		if err := w.WriteID(f.kind, 7, f.p); err != nil {
			t.Fatal(err)
		}
	}
	want := []struct {
		kind byte
		n    int
	}{{Start, 0}, {Stdout, 6}, {Stdin, MaxFrame}, {Stdin, 10}}
	for _, wf := range want {
		f, err := Read(&b)
		if err != nil || f.Kind != wf.kind || f.ID != 7 || len(f.P) != wf.n {
			t.Fatalf("frame %c %d: got %c %d %d %v", wf.kind, wf.n, f.Kind, f.ID, len(f.P), err)
		}
	}
	if _, err := Read(&b); err == nil {
		t.Error("read past the end")
	}
	b.Write([]byte{Stdout, 0, 0, 0, 0, 0xff, 0, 0, 0})
	if _, err := Read(&b); err == nil {
		t.Error("an oversized frame was taken")
	}
}
