package builder

import (
	"strings"
	"testing"
)

// TestSequencer: stages that write at once come out in the stages'
// order; the stage whose turn it is writes through at once.
func TestSequencer(t *testing.T) {
	var out strings.Builder
	s := newSequencer(func(text string) { out.WriteString(text) }, []int{0, 2, 3})
	w0, w2, w3 := s.writer(0), s.writer(2), s.writer(3)
	w3("d1 ")
	w2("c1 ")
	w0("a1 ")
	if out.String() != "a1 " {
		t.Fatalf("the first stage did not write through: %q", out.String())
	}
	s.finish(3) // done before its turn: held
	w2("c2 ")
	if out.String() != "a1 " {
		t.Fatalf("a later stage's output went out early: %q", out.String())
	}
	s.finish(0)
	if out.String() != "a1 c1 c2 " {
		t.Fatalf("the next stage's held output: %q", out.String())
	}
	w2("c3 ")
	s.finish(2)
	if out.String() != "a1 c1 c2 c3 d1 " {
		t.Fatalf("all: %q", out.String())
	}
	s.flushAll() // nothing left
	if out.String() != "a1 c1 c2 c3 d1 " {
		t.Fatalf("after flushAll: %q", out.String())
	}

	// A failed build: what the stages after the failing one wrote goes
	// out in order at the end.
	out.Reset()
	s = newSequencer(func(text string) { out.WriteString(text) }, []int{0, 1})
	s.writer(1)("b ")
	s.writer(0)("a ")
	s.flushAll()
	if out.String() != "a b " {
		t.Fatalf("flushAll: %q", out.String())
	}
}
