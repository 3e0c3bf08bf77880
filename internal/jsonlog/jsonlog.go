// Package jsonlog reads and writes container logs in docker's json-file
// format: one JSON object per line, {"log":..., "stream":..., "time":...},
// with size-based rotation (path, path.1, path.2, ... oldest last).
package jsonlog

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"sync"
	"time"
)

// Entry is one log record.
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// maxLine is where a line without a newline is cut into its own entry, as
// docker does (16 KiB).
const maxLine = 16 * 1024

// Writer appends entries to a log file, rotating it when it grows past
// MaxSize (0: never) and keeping MaxFiles files in all.
type Writer struct {
	mu       sync.Mutex
	path     string
	f        *os.File
	size     int64
	maxSize  int64
	maxFiles int
	partial  map[string][]byte
}

// NewWriter opens (appending) the log at path.
func NewWriter(path string, maxSize int64, maxFiles int) (*Writer, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if maxFiles < 1 {
		maxFiles = 1
	}
	return &Writer{path: path, f: f, size: st.Size(), maxSize: maxSize, maxFiles: maxFiles, partial: map[string][]byte{}}, nil
}

// Write logs p as output of stream: each complete line is one entry; a
// trailing partial line waits for the rest (up to 16 KiB).
func (w *Writer) Write(stream string, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now().UTC()
	buf := append(w.partial[stream], p...)
	for {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			break
		}
		if err := w.emit(stream, buf[:i+1], now); err != nil {
			return err
		}
		buf = buf[i+1:]
	}
	for len(buf) >= maxLine {
		if err := w.emit(stream, buf[:maxLine], now); err != nil {
			return err
		}
		buf = buf[maxLine:]
	}
	w.partial[stream] = append([]byte(nil), buf...)
	return nil
}

// Close flushes partial lines and closes the file.
func (w *Writer) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var errs []error
	for stream, buf := range w.partial {
		if len(buf) > 0 {
			errs = append(errs, w.emit(stream, buf, time.Now().UTC()))
		}
	}
	w.partial = map[string][]byte{}
	errs = append(errs, w.f.Close())
	return errors.Join(errs...)
}

func (w *Writer) emit(stream string, line []byte, t time.Time) error {
	b, err := json.Marshal(Entry{Log: string(line), Stream: stream, Time: t})
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if w.maxSize > 0 && w.size > 0 && w.size+int64(len(b)) > w.maxSize {
		if err := w.rotate(); err != nil {
			return err
		}
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	return err
}

func (w *Writer) rotate() error {
	if err := w.f.Close(); err != nil {
		return err
	}
	if w.maxFiles == 1 {
		if err := os.Truncate(w.path, 0); err != nil {
			return err
		}
	} else {
		for i := w.maxFiles - 1; i > 0; i-- {
			from := rotated(w.path, i-1)
			if err := os.Rename(from, rotated(w.path, i)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
	}
	f, err := os.OpenFile(w.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	w.f, w.size = f, 0
	return nil
}

func rotated(path string, i int) string {
	if i == 0 {
		return path
	}
	return fmt.Sprintf("%s.%d", path, i)
}

// ReadOpts select the entries Read returns.
type ReadOpts struct {
	Since, Until time.Time // zero: unbounded
	Tail         int       // last n entries; negative: all
}

// Read returns the entries of the log at path and its rotated files, oldest
// first. A missing log is empty.
func Read(path string, o ReadOpts) ([]Entry, int64, error) {
	var all []Entry
	var offset int64
	for i := 64; i >= 0; i-- {
		f, err := os.Open(rotated(path, i))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		entries, n, err := decode(f, o)
		f.Close()
		if err != nil {
			return nil, 0, err
		}
		all = append(all, entries...)
		if i == 0 {
			offset = n
		}
	}
	if o.Tail >= 0 && len(all) > o.Tail {
		all = all[len(all)-o.Tail:]
	}
	return all, offset, nil
}

// decode reads complete lines and reports how many bytes they took.
func decode(r io.Reader, o ReadOpts) ([]Entry, int64, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var out []Entry
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return out, n, nil
		}
		if err != nil {
			return out, n, err
		}
		n += int64(len(line))
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			continue // a torn line from a crash: skip it, as docker does
		}
		if !o.Since.IsZero() && e.Time.Before(o.Since) {
			continue
		}
		if !o.Until.IsZero() && e.Time.After(o.Until) {
			continue
		}
		out = append(out, e)
	}
}
