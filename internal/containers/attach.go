package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/streams"
	"github.com/tent-project/tent/internal/task"
)

// pendingAttach is a client attached to a container that has not started:
// it gets its monitor connection at start, or nil if the container is
// removed or its start fails.
type pendingAttach struct {
	opts task.AttachOpts
	conn chan task.Stream
}

// ConnectPending connects the attachments that wait for this start to
// c.Task; c.Mu is held.
func (c *Container) ConnectPending() {
	for _, p := range c.pending {
		o := p.opts
		o.BeforeStart = true
		conn, err := c.Task.Attach(context.TODO(), o)
		if err != nil {
			conn = nil
		}
		p.conn <- conn
	}
	c.pending = nil
}

// ClosePending tells the waiting attachments that nothing will come; c.Mu
// is held.
func (c *Container) ClosePending() {
	for _, p := range c.pending {
		p.conn <- nil
	}
	c.pending = nil
}

// attachment is a client's view of a container's stdio, checked and ready
// to be streamed once the HTTP connection is taken over
// (backend.Attachment).
type attachment struct {
	tty bool
	// detachKeys end the attachment when the client types them (with a
	// terminal only, as docker): the container goes on.
	detachKeys []byte
	c          *Container
	opts       task.AttachOpts
	// pending is the attachment's place among those that wait for the
	// start, taken by Attach itself: the client may start the container
	// as soon as it hears that its attach was taken (docker run does),
	// which is before Stream runs.
	pending *pendingAttach
}

// Attach checks that the container can be attached to (it is not paused
// or going) before the caller hijacks its connection.
func (c *Container) Attach(stdin, stdout, stderr bool, detachKeys []byte) (backend.Attachment, error) {
	c.Mu.Lock()
	defer c.Mu.Unlock()
	// A stopped container may be attached to, as dockerd allows: the
	// attachment waits for the next start (docker start -a).
	if c.State.Status == container.StateDead || c.State.Status == container.StateRemoving {
		return nil, fmt.Errorf("You cannot attach to a stopped container, start it first: %w", errdefs.ErrConflict)
	}
	if c.State.Status == container.StatePaused {
		return nil, fmt.Errorf("You cannot attach to a paused container, unpause it first: %w", errdefs.ErrConflict)
	}
	a := &attachment{tty: c.Config.Tty, detachKeys: detachKeys, c: c,
		opts: task.AttachOpts{Stdin: stdin && c.Config.OpenStdin, Stdout: stdout, Stderr: stderr}}
	if !c.Running() {
		a.pending = &pendingAttach{opts: a.opts, conn: make(chan task.Stream, 1)}
		c.pending = append(c.pending, a.pending)
	}
	return a, nil
}

func (a *attachment) Terminal() bool { return a.tty }

// Cancel gives up an attachment that will not be streamed (its client
// went away before Stream).
func (a *attachment) Cancel() {
	if a.pending == nil {
		return
	}
	c := a.c
	c.Mu.Lock()
	c.pending = slices.DeleteFunc(c.pending, func(p *pendingAttach) bool { return p == a.pending })
	c.Mu.Unlock()
	select {
	case conn := <-a.pending.conn:
		if conn != nil {
			conn.Close()
		}
	default:
	}
}

// Stream relays between the client and the container until the container
// ends (or the client goes away). in is what the client sends; out is
// where its output goes; closeOut ends the client's stream.
func (a *attachment) Stream(ctx context.Context, in io.Reader, out io.Writer, closeOut func()) {
	c := a.c
	var conn task.Stream
	if a.pending != nil {
		select {
		case conn = <-a.pending.conn:
		case <-ctx.Done():
			a.Cancel()
		}
	} else {
		c.Mu.Lock()
		if c.Running() {
			conn, _ = c.Task.Attach(ctx, a.opts)
		}
		c.Mu.Unlock()
	}
	if conn == nil {
		closeOut()
		return
	}
	defer conn.Close()
	if a.opts.Stdin {
		if a.tty && len(a.detachKeys) > 0 {
			in = streams.NewEscapeReader(in, a.detachKeys)
		}
		go func() {
			if _, err := io.Copy(conn, in); errors.Is(err, streams.ErrDetached) {
				conn.Close() // ends the output too: the client is gone
				return
			}
			conn.CloseWrite()
		}()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	io.Copy(out, conn)
	closeOut()
}
