package logs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/streams"
)

func writeLog(t *testing.T, lines ...[2]string) (logfile.Options, *logfile.Writer) {
	t.Helper()
	o := logfile.Options{Path: filepath.Join(t.TempDir(), "c-json.log"), Format: logfile.JSONFile}
	w, err := logfile.NewWriter(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	for _, l := range lines {
		if err := w.Write(l[0], []byte(l[1])); err != nil {
			t.Fatal(err)
		}
	}
	return o, w
}

// safeBuffer is written by Send while the test reads it.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestSendOptions(t *testing.T) {
	o, _ := writeLog(t, [2]string{"stdout", "one\n"}, [2]string{"stderr", "two\n"}, [2]string{"stdout", "three\n"})
	var raw bytes.Buffer
	src := Source{Log: o, Tty: true}
	if err := Send(context.Background(), src, backend.LogOpts{Stdout: true, Stderr: true, Tail: 2, Timestamps: true}, func(tty bool) io.Writer {
		if !tty {
			t.Error("a terminal's log announced as framed")
		}
		return &raw
	}); err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\dT\S+Z two\n\S+ three\n$`).MatchString(raw.String()) {
		t.Errorf("--tail 2 --timestamps: %q", raw.String())
	}

	var framed bytes.Buffer
	src.Tty = false
	if err := Send(context.Background(), src, backend.LogOpts{Stdout: true, Tail: -1}, func(bool) io.Writer { return &framed }); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if err := streams.Demux(&out, &errOut, &framed); err != nil || out.String() != "one\nthree\n" || errOut.Len() != 0 {
		t.Errorf("stdout only: %q %q %v", out.String(), errOut.String(), err)
	}
}

func TestSendRefusals(t *testing.T) {
	o, _ := writeLog(t)
	ready := func(bool) io.Writer { return io.Discard }
	if err := Send(context.Background(), Source{Log: o}, backend.LogOpts{Tail: -1}, ready); !errdefs.IsInvalidArgument(err) {
		t.Errorf("no stream chosen: %v", err)
	}
	if err := Send(context.Background(), Source{}, backend.LogOpts{Stdout: true, Tail: -1}, ready); !errors.Is(err, errdefs.ErrNotImplemented) {
		t.Errorf("the none driver: %v", err)
	}
}

// Following sends what is written after the start and ends with the run.
func TestSendFollows(t *testing.T) {
	o, w := writeLog(t, [2]string{"stdout", "before\n"})
	exited := make(chan struct{})
	var buf safeBuffer
	done := make(chan error, 1)
	go func() {
		done <- Send(context.Background(), Source{Log: o, Tty: true, Running: true, Exited: exited},
			backend.LogOpts{Stdout: true, Stderr: true, Follow: true, Tail: -1}, func(bool) io.Writer { return &buf })
	}()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(buf.String(), "before") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	w.Write("stdout", []byte("after\n"))
	close(exited)
	select {
	case err := <-done:
		if err != nil || buf.String() != "before\nafter\n" {
			t.Errorf("followed: %q %v", buf.String(), err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Send went on after the run ended")
	}
}
