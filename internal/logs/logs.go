// Package logs answers GET /containers/{id}/logs: a container's log file
// (internal/logfile) read with docker's options (streams, --since,
// --until, --tail, --timestamps) and followed while the container runs.
package logs

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/streams"
)

// Source is a container's log as the engine knows it.
type Source struct {
	// Log is where and how the container's output is logged (no Path:
	// the none driver, which cannot be read).
	Log logfile.Options
	// Tty: the output is a terminal's, sent raw rather than framed.
	Tty bool
	// Running says whether to follow; Exited closes when the run ends.
	Running bool
	Exited  <-chan struct{}
}

// Send writes the log of src to the writer ready gives once the log can
// be read (framed unless src.Tty); with o.Follow it keeps writing until
// the container's run ends, o.Until passes or ctx ends.
func Send(ctx context.Context, src Source, o backend.LogOpts, ready func(tty bool) io.Writer) error {
	if !o.Stdout && !o.Stderr {
		return fmt.Errorf("You must choose at least one stream: %w", errdefs.ErrInvalidArgument)
	}
	tty, exited, running, lo := src.Tty, src.Exited, src.Running, src.Log
	if lo.Path == "" {
		return fmt.Errorf("configured logging driver does not support reading: %w", errdefs.ErrNotImplemented)
	}
	w := streams.NewWriter(ready(tty), tty)
	send := func(entries []logfile.Entry) error {
		for _, e := range entries {
			kind := streams.Kind(e.Stream)
			if (kind == streams.Stdout && !o.Stdout) || (kind == streams.Stderr && !o.Stderr) {
				continue
			}
			line := []byte(e.Log)
			if o.Timestamps {
				line = append([]byte(e.Time.Format("2006-01-02T15:04:05.000000000Z07:00")+" "), line...)
			}
			if err := w.Write(kind, line); err != nil {
				return err
			}
		}
		return nil
	}
	ro := logfile.ReadOpts{Since: o.Since, Until: o.Until, Tail: o.Tail}
	entries, offset, err := logfile.Read(lo.Path, lo.Format, ro)
	if err != nil {
		return err
	}
	if err := send(entries); err != nil || !o.Follow || !running {
		return err
	}
	// Following ends at --until too, as docker's does.
	var until <-chan time.Time
	if !o.Until.IsZero() {
		left := time.Until(o.Until)
		if left <= 0 {
			return nil
		}
		t := time.NewTimer(left)
		defer t.Stop()
		until = t.C
	}
	fl := logfile.NewFollower(lo.Path, lo.Format, offset, ro)
	defer fl.Close()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		done := false
		select {
		case <-ctx.Done():
			return nil
		case <-exited:
			done = true
		case <-until:
			done = true
		case <-tick.C:
		}
		entries, err := fl.Next()
		if err != nil {
			return err
		}
		if err := send(entries); err != nil || done {
			return err
		}
	}
}
