package daemon

import (
	"context"
	"io"

	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/logs"
)

// Attach checks that the container can be attached to (it exists and is
// not paused or going) before the caller hijacks its connection.
func (d *Daemon) Attach(ref string, stdin, stdout, stderr bool, detachKeys []byte) (backend.Attachment, error) {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return nil, err
	}
	return c.Attach(stdin, stdout, stderr, detachKeys)
}

// Resize sets the size of the container's terminal.
func (d *Daemon) Resize(ref string, height, width uint16) error {
	c, err := d.ctrs.GetRunning(ref)
	if err != nil {
		return err
	}
	defer c.Mu.Unlock()
	return c.Task.Resize(context.TODO(), height, width)
}

// Logs writes the container's log to the writer ready gives for its
// kind of stream (internal/logs); with Follow it keeps writing until the
// container stops, Until passes or ctx ends.
func (d *Daemon) Logs(ctx context.Context, ref string, o backend.LogOpts, ready func(tty bool) io.Writer) error {
	c, err := d.ctrs.Get(ref)
	if err != nil {
		return err
	}
	c.Mu.Lock()
	src := logs.Source{Log: d.logOptions(c), Tty: c.Config.Tty, Running: c.Running(), Exited: c.Exited}
	c.Mu.Unlock()
	return logs.Send(ctx, src, o, ready)
}
