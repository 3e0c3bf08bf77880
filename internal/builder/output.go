package builder

import (
	"strings"
	"sync"
)

// sequencer prints the output of stages that run at once in the stages'
// order, as a sequential build prints it: the stage whose turn it is
// writes through at once, the others into a buffer that goes out when
// their turn comes (each stage's turn comes once the earlier ones are
// done).
type sequencer struct {
	mu    sync.Mutex
	out   func(string)
	order []int // the stages, in order
	turn  int   // the index in order of the stage that writes through
	bufs  map[int]*strings.Builder
	done  map[int]bool
}

func newSequencer(out func(string), order []int) *sequencer {
	s := &sequencer{out: out, order: order, bufs: map[int]*strings.Builder{}, done: map[int]bool{}}
	for _, i := range order {
		s.bufs[i] = &strings.Builder{}
	}
	return s
}

// writer is stage i's output.
func (s *sequencer) writer(i int) func(string) {
	return func(text string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.turn < len(s.order) && s.order[s.turn] == i {
			s.out(text)
			return
		}
		s.bufs[i].WriteString(text)
	}
}

// finish says that stage i has written all it will: the turn passes on,
// past the stages that finished meanwhile, whose output goes out.
func (s *sequencer) finish(i int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done[i] = true
	for s.turn < len(s.order) && s.done[s.order[s.turn]] {
		s.turn++
		if s.turn < len(s.order) {
			s.flush(s.order[s.turn])
		}
	}
}

// flushAll writes what is still buffered, in order (a build that failed:
// the stages after the turn's ended early).
func (s *sequencer) flushAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, i := range s.order[min(s.turn, len(s.order)):] {
		s.flush(i)
	}
}

func (s *sequencer) flush(i int) {
	if b := s.bufs[i]; b.Len() > 0 {
		s.out(b.String())
		b.Reset()
	}
}
