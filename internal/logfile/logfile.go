// Package logfile keeps a container's output on disk as docker's file log
// drivers do, and reads it back for `logs`:
//
//   - json-file: one JSON object per line, {"log":..., "stream":...,
//     "time":...}, docker's default;
//   - local: docker's compact binary records, each a protobuf LogEntry
//     between two big-endian 32-bit lengths (local.go).
//
// Both rotate by size (path, path.1, path.2, ... oldest last) and can
// gzip the files they rotate (path.1.gz, ...): the local driver does by
// default, json-file with compress=true.
package logfile

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Format is how entries are put in a file.
type Format string

// The formats, named as the log drivers that use them.
const (
	JSONFile Format = "json-file"
	Local    Format = "local"
)

// Entry is one log record. Log ends with a newline unless the line was
// cut (longer than 16 KiB, or the output ended without one).
type Entry struct {
	Log    string    `json:"log"`
	Stream string    `json:"stream"`
	Time   time.Time `json:"time"`
}

// Options say where a log goes and how it rotates.
type Options struct {
	Path   string
	Format Format // "" is JSONFile
	// MaxSize is the size at which the file rotates (0 or less: never);
	// MaxFiles how many files are kept in all (rotated ones included).
	MaxSize  int64
	MaxFiles int
	// Compress gzips the rotated files.
	Compress bool
}

// codec encodes and decodes the records of one format.
type codec interface {
	encode(dst []byte, e Entry) ([]byte, error)
	// decode reads the complete records of r that o selects and says how
	// many bytes the complete records took (a torn tail is not counted).
	decode(r io.Reader, o ReadOpts) ([]Entry, int64, error)
	// validEnd is the offset after the last complete record of a file
	// of size n that f holds (the writer cuts a torn tail there).
	validEnd(f *os.File, n int64) (int64, error)
}

func codecOf(f Format) codec {
	if f == Local {
		return localCodec{}
	}
	return jsonCodec{}
}

// maxLine is where a line without a newline is cut into its own entry, as
// docker does (16 KiB).
const maxLine = 16 * 1024

// Writer appends entries to a log file, rotating it when it grows past
// MaxSize and keeping MaxFiles files in all.
type Writer struct {
	mu      sync.Mutex
	o       Options
	codec   codec
	f       *os.File
	size    int64
	partial map[string][]byte
	buf     []byte
	// compressing is the gzip of the last rotated file, which the next
	// rotation waits for before it moves the files on.
	compressing sync.WaitGroup
	compressErr error
}

// NewWriter opens the log at o.Path for appending. A record torn by a
// crash of the previous writer is cut off first, so that what follows it
// reads.
func NewWriter(o Options) (*Writer, error) {
	if err := os.MkdirAll(filepath.Dir(o.Path), 0o750); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(o.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, err
	}
	if o.MaxFiles < 1 {
		o.MaxFiles = 1
	}
	w := &Writer{o: o, codec: codecOf(o.Format), f: f, partial: map[string][]byte{}}
	if w.size, err = w.cutTornTail(); err != nil {
		f.Close()
		return nil, err
	}
	if o.Compress && o.MaxFiles > 1 {
		w.compressRotated() // a gzip that a crash interrupted
	}
	return w, nil
}

func (w *Writer) cutTornTail() (int64, error) {
	st, err := w.f.Stat()
	if err != nil {
		return 0, err
	}
	end, err := w.codec.validEnd(w.f, st.Size())
	if err != nil {
		return 0, err
	}
	if end < st.Size() {
		if err := w.f.Truncate(end); err != nil {
			return 0, err
		}
	}
	return end, nil
}

// Write logs p as output of stream: each complete line is one entry; a
// trailing partial line waits for the rest (up to 16 KiB).
func (w *Writer) Write(stream string, p []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now().UTC()
	buf := append(w.partial[stream], p...)
	for {
		n := bytes.IndexByte(buf, '\n') + 1
		if n > maxLine || n == 0 && len(buf) >= maxLine {
			n = maxLine // cut, as docker does
		}
		if n == 0 {
			break
		}
		if err := w.emit(stream, buf[:n], now); err != nil {
			return err
		}
		buf = buf[n:]
	}
	w.partial[stream] = append([]byte(nil), buf...)
	return nil
}

// Close flushes partial lines, waits for a gzip under way and closes the
// file.
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
	w.compressing.Wait()
	errs = append(errs, w.compressErr, w.f.Close())
	return errors.Join(errs...)
}

func (w *Writer) emit(stream string, line []byte, t time.Time) error {
	b, err := w.codec.encode(w.buf[:0], Entry{Log: string(line), Stream: stream, Time: t})
	if err != nil {
		return err
	}
	w.buf = b
	if w.o.MaxSize > 0 && w.size > 0 && w.size+int64(len(b)) > w.o.MaxSize {
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
	if w.o.MaxFiles == 1 {
		if err := os.Truncate(w.o.Path, 0); err != nil {
			return err
		}
	} else {
		w.compressing.Wait()
		if err := w.compressErr; err != nil {
			return err
		}
		for i := w.o.MaxFiles - 1; i > 0; i-- {
			from, to := rotated(w.o.Path, i-1), rotated(w.o.Path, i)
			if w.o.Compress && i > 1 {
				from, to = from+gzSuffix, to+gzSuffix
			}
			if err := os.Rename(from, to); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
		}
		if w.o.Compress {
			w.compressing.Add(1)
			go func() {
				defer w.compressing.Done()
				w.compressErr = w.compressRotated()
			}()
		}
	}
	f, err := os.OpenFile(w.o.Path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o640)
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

// maxRotated bounds how many rotated files are looked for.
const maxRotated = 64

// ReadOpts select the entries Read returns.
type ReadOpts struct {
	Since, Until time.Time // zero: unbounded
	Tail         int       // last n entries; negative: all
}

func (o ReadOpts) selects(e *Entry) bool {
	return (o.Since.IsZero() || !e.Time.Before(o.Since)) && (o.Until.IsZero() || !e.Time.After(o.Until))
}

// Read returns the entries of the log at path in format f and of its
// rotated files (plain or gzipped), oldest first, and the offset in the
// current file after the last complete record. A missing log is empty.
func Read(path string, f Format, o ReadOpts) ([]Entry, int64, error) {
	c := codecOf(f)
	var all []Entry
	var offset int64
	for i := maxRotated; i >= 0; i-- {
		r, err := openRotated(rotated(path, i))
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		entries, n, err := c.decode(r, o)
		r.Close()
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
