package cli

import (
	"fmt"
	"io"
	"regexp"
	"strings"
	"sync"
	"time"
)

// ttyProgress shows a build as BuildKit's tty mode does, from the legacy
// stream that POST /build answers: a header with the time and the steps
// done, a line per step with its time (CACHED when the cache had it),
// and the last lines of the running step's output, redrawn in place
// every tick. When the build ends, the list stays on the screen with the
// failed step's output under it; "Successfully built" and the like come
// after it.
type ttyProgress struct {
	w     io.Writer
	width int // the terminal's columns (lines are cut to fit: a wrapped line breaks the redraw)
	now   func() time.Time

	mu      sync.Mutex
	start   time.Time
	total   int
	steps   []*ttyStep
	partial string   // a line not ended yet
	after   []string // what follows the steps (Successfully ...)
	drawn   int      // lines drawn last time
	stop    chan struct{}
	stopped sync.WaitGroup
}

type ttyStep struct {
	label, text string
	start, end  time.Time
	cached      bool
	tail        []string // the last lines of its output
}

// tailLines is how many lines of a running step's output are shown.
const tailLines = 6

var stepLine = regexp.MustCompile(`^Step (\d+)/(\d+) : (.*)$`)

func newTTYProgress(w io.Writer, width int, now func() time.Time) *ttyProgress {
	if width <= 0 {
		width = 80
	}
	return &ttyProgress{w: w, width: width, now: now, start: now(), stop: make(chan struct{})}
}

// run redraws every tick until Close.
func (p *ttyProgress) run(tick time.Duration) {
	p.stopped.Add(1)
	go func() {
		defer p.stopped.Done()
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-p.stop:
				return
			case <-t.C:
				p.mu.Lock()
				p.draw(false, false)
				p.mu.Unlock()
			}
		}
	}()
}

// Write takes the build's stream text.
func (p *ttyProgress) Write(text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	text = p.partial + text
	lines := strings.Split(text, "\n")
	p.partial = lines[len(lines)-1]
	for _, l := range lines[:len(lines)-1] {
		p.line(l)
	}
}

func (p *ttyProgress) current() *ttyStep {
	if len(p.steps) == 0 {
		return nil
	}
	return p.steps[len(p.steps)-1]
}

func (p *ttyProgress) line(l string) {
	cur := p.current()
	if m := stepLine.FindStringSubmatch(l); m != nil {
		if cur != nil && cur.end.IsZero() {
			cur.end = p.now()
		}
		fmt.Sscan(m[2], &p.total)
		p.steps = append(p.steps, &ttyStep{label: m[1] + "/" + m[2], text: m[3], start: p.now()})
		return
	}
	switch {
	case cur == nil || strings.HasPrefix(l, "Successfully ") || strings.HasPrefix(l, "[Warning]"):
		p.after = append(p.after, l)
	case l == " ---> Using cache":
		cur.cached = true
	case strings.HasPrefix(l, " ---> Running in ") || strings.HasPrefix(l, "Removing intermediate container "):
	case strings.HasPrefix(l, " ---> "):
		cur.end = p.now()
	default:
		cur.tail = append(cur.tail, l)
		if len(cur.tail) > tailLines {
			cur.tail = cur.tail[len(cur.tail)-tailLines:]
		}
	}
}

// Close draws the final picture; failed tells that the build did not
// end well (the last step's output stays then).
func (p *ttyProgress) Close(failed bool) {
	close(p.stop)
	p.stopped.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.partial != "" {
		p.line(p.partial)
		p.partial = ""
	}
	if cur := p.current(); cur != nil && cur.end.IsZero() {
		cur.end = p.now()
	}
	p.draw(true, failed)
	for _, l := range p.after {
		fmt.Fprintln(p.w, l)
	}
	if failed {
		if cur := p.current(); cur != nil {
			for _, l := range cur.tail {
				fmt.Fprintln(p.w, l)
			}
		}
	}
}

// draw redraws the display over the last one (final: the build has
// ended, failed: with an error, which its last step is marked with);
// p.mu is held.
func (p *ttyProgress) draw(final, failed bool) {
	var b strings.Builder
	if p.drawn > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.drawn) // back to the header
	}
	done := 0
	for _, s := range p.steps {
		if !s.end.IsZero() {
			done++
		}
	}
	header := fmt.Sprintf("[+] Building %.1fs (%d/%d)", p.now().Sub(p.start).Seconds(), done, p.total)
	if final && !failed && done == p.total && p.total > 0 {
		header += " FINISHED"
	}
	lines := []string{header}
	for i, s := range p.steps {
		end := s.end
		if end.IsZero() {
			end = p.now()
		}
		name := "[" + s.label + "] " + s.text
		switch {
		case failed && i == len(p.steps)-1:
			name = "ERROR " + name
		case s.cached:
			name = "CACHED " + name
		}
		secs := fmt.Sprintf(" %5.1fs", end.Sub(s.start).Seconds())
		room := p.width - len(secs) - 5 // a line as wide as the terminal may wrap
		if len(name) > room {
			name = name[:max(room, 0)]
		}
		lines = append(lines, " => "+name+strings.Repeat(" ", max(room-len(name), 0))+secs)
		if s.end.IsZero() && !final {
			for _, t := range s.tail {
				lines = append(lines, cut(" => => # "+t, p.width-1))
			}
		}
	}
	for _, l := range lines {
		b.WriteString(l + "\x1b[K\n") // each line cleared to its end
	}
	// Lines left of a taller last picture are cleared.
	for i := len(lines); i < p.drawn; i++ {
		b.WriteString("\x1b[K\n")
	}
	if extra := p.drawn - len(lines); extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	p.drawn = len(lines)
	io.WriteString(p.w, b.String())
}

func cut(s string, n int) string {
	if len(s) > n && n > 0 {
		return s[:n]
	}
	return s
}
