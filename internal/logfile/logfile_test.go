package logfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRoundTrip: what is written reads back, in both formats, with
// streams, times, cut lines and a partial last line.
func TestRoundTrip(t *testing.T) {
	long := strings.Repeat("x", maxLine+10)
	for _, f := range []Format{JSONFile, Local} {
		path := filepath.Join(t.TempDir(), "ctr.log")
		w, err := NewWriter(Options{Path: path, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		before := time.Now()
		w.Write("stdout", []byte("one\ntw"))
		w.Write("stderr", []byte("err\n"))
		w.Write("stdout", []byte("o\n"+long+"\nend"))
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, off, err := Read(path, f, ReadOpts{Tail: -1})
		if err != nil {
			t.Fatal(err)
		}
		want := []Entry{{"one\n", "stdout", time.Time{}}, {"err\n", "stderr", time.Time{}}, {"two\n", "stdout", time.Time{}},
			{long[:maxLine], "stdout", time.Time{}}, {"xxxxxxxxxx\n", "stdout", time.Time{}}, {"end", "stdout", time.Time{}}}
		if len(got) != len(want) {
			t.Fatalf("%s: %d entries, want %d", f, len(got), len(want))
		}
		for i := range want {
			if got[i].Log != want[i].Log || got[i].Stream != want[i].Stream || got[i].Time.Before(before) || time.Since(got[i].Time) > time.Minute {
				t.Errorf("%s: entry %d: %.40q on %s at %v, want %.40q on %s", f, i, got[i].Log, got[i].Stream, got[i].Time, want[i].Log, want[i].Stream)
			}
		}
		if st, _ := os.Stat(path); st.Size() != off {
			t.Errorf("%s: offset %d, file %d bytes", f, off, st.Size())
		}
		if tail, _, _ := Read(path, f, ReadOpts{Tail: 2}); len(tail) != 2 || tail[1].Log != "end" {
			t.Errorf("%s: tail 2: %q", f, tail)
		}
	}
}

// TestTornTailCut: a record torn by a crash is cut when the log is
// opened again, and what is written after it reads.
func TestTornTailCut(t *testing.T) {
	for _, f := range []Format{JSONFile, Local} {
		path := filepath.Join(t.TempDir(), "ctr.log")
		w, _ := NewWriter(Options{Path: path, Format: f})
		w.Write("stdout", []byte("kept\n"))
		w.Close()
		st, _ := os.Stat(path)
		w, _ = NewWriter(Options{Path: path, Format: f})
		w.Write("stdout", []byte("torn\n"))
		w.Close()
		os.Truncate(path, st.Size()+5) // the crash
		w, err := NewWriter(Options{Path: path, Format: f})
		if err != nil {
			t.Fatal(err)
		}
		w.Write("stdout", []byte("after\n"))
		w.Close()
		got, _, err := Read(path, f, ReadOpts{Tail: -1})
		if err != nil || len(got) != 2 || got[0].Log != "kept\n" || got[1].Log != "after\n" {
			t.Errorf("%s: %q %v", f, got, err)
		}
	}
}

// TestCompressedRotation: rotated files are gzipped, at most MaxFiles
// files are kept, Read reads the gzipped ones, and a gzip that a crash
// interrupted is finished by the next writer.
func TestCompressedRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "container.log")
	w, _ := NewWriter(Options{Path: path, Format: Local, MaxSize: 200, MaxFiles: 3, Compress: true})
	for i := 0; i < 100; i++ {
		w.Write("stdout", []byte("a line of output\n"))
	}
	w.Close()
	files, _ := filepath.Glob(path + "*")
	if len(files) != 3 || files[1] != path+".1.gz" || files[2] != path+".2.gz" {
		t.Fatalf("files: %v", files)
	}
	got, _, err := Read(path, Local, ReadOpts{Tail: -1})
	if err != nil || len(got) == 0 || len(got) >= 100 {
		t.Fatalf("read %d entries: %v", len(got), err)
	}
	// A crash left path.1 plain: the next writer gzips it.
	os.Remove(path + ".1.gz")
	os.WriteFile(path+".1", nil, 0o640)
	w, _ = NewWriter(Options{Path: path, Format: Local, MaxSize: 200, MaxFiles: 3, Compress: true})
	w.Close()
	if _, err := os.Stat(path + ".1.gz"); err != nil {
		t.Errorf("path.1 not gzipped: %v", err)
	}
	if _, err := os.Stat(path + ".1"); err == nil {
		t.Error("path.1 left")
	}
}
