package distribution

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	units "github.com/docker/go-units"
)

// Message is one line of docker's JSON progress stream (pull, push).
type Message struct {
	Status         string          `json:"status,omitempty"`
	ID             string          `json:"id,omitempty"`
	ProgressDetail *ProgressDetail `json:"progressDetail,omitempty"`
	Progress       string          `json:"progress,omitempty"`
	Aux            any             `json:"aux,omitempty"`
	ErrorDetail    *ErrorDetail    `json:"errorDetail,omitempty"`
	Error          string          `json:"error,omitempty"`
}

// ProgressDetail is a transfer's position.
type ProgressDetail struct {
	Current int64 `json:"current"`
	Total   int64 `json:"total,omitempty"`
}

// ErrorDetail ends a stream that failed after it began.
type ErrorDetail struct {
	Message string `json:"message"`
}

// Progress writes a progress stream. Start is called before the first
// message (the HTTP status is sent then): errors before it are returned
// to the client as a plain API error instead.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	start   func()
	started bool
}

// NewProgress returns a Progress writing to w (which should flush each
// write to the client); start runs once before the first message.
func NewProgress(w io.Writer, start func()) *Progress {
	return &Progress{w: w, start: start}
}

// Started tells whether anything was written.
func (p *Progress) Started() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

func (p *Progress) send(m Message) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.started {
		p.started = true
		if p.start != nil {
			p.start()
		}
	}
	b, _ := json.Marshal(m)
	p.w.Write(append(b, '\r', '\n'))
}

// Status sends a status line, for one layer when id is set.
func (p *Progress) Status(id, status string) { p.send(Message{ID: id, Status: status}) }

// Aux sends a result object.
func (p *Progress) Aux(v any) { p.send(Message{Aux: v}) }

// Fail ends the stream with an error.
func (p *Progress) Fail(err error) {
	p.send(Message{ErrorDetail: &ErrorDetail{Message: err.Error()}, Error: err.Error()})
}

// counter relays a transfer's progress as "Downloading", "Pushing", ...
// messages, at most every 100 ms.
type counter struct {
	r      io.Reader
	p      *Progress
	id     string
	action string
	n      int64
	total  int64
	last   time.Time
}

func (c *counter) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	if now := time.Now(); now.Sub(c.last) > 100*time.Millisecond || (err == io.EOF && c.n > 0) {
		c.last = now
		c.p.send(Message{ID: c.id, Status: c.action, ProgressDetail: &ProgressDetail{Current: c.n, Total: c.total},
			Progress: progressBar(c.n, c.total)})
	}
	return n, err
}

// progressBar renders docker's "[=====>     ]  1.2MB/3.4MB".
func progressBar(cur, total int64) string {
	if total <= 0 {
		return units.HumanSize(float64(cur))
	}
	const width = 50
	done := int(float64(width) * float64(cur) / float64(total))
	done = min(max(done, 0), width)
	bar := strings.Repeat("=", done)
	if done < width {
		bar += ">" + strings.Repeat(" ", width-done-1)
	}
	return fmt.Sprintf("[%s] %8s/%s", bar, units.HumanSize(float64(cur)), units.HumanSize(float64(total)))
}
