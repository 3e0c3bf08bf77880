package logfile

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestFollowAcrossRotation writes 5,000 lines into a log that rotates
// every few hundred while a follower reads it, and checks every line
// comes once, in order, in each format, with and without compression.
func TestFollowAcrossRotation(t *testing.T) {
	for _, tc := range []struct {
		format   Format
		compress bool
	}{{JSONFile, false}, {JSONFile, true}, {Local, false}, {Local, true}} {
		t.Run(fmt.Sprintf("%s,compress=%v", tc.format, tc.compress), func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ctr.log")
			w, err := NewWriter(Options{Path: path, Format: tc.format, MaxSize: 4096, MaxFiles: 3, Compress: tc.compress})
			if err != nil {
				t.Fatal(err)
			}
			entries, offset, err := Read(path, tc.format, ReadOpts{Tail: -1})
			if err != nil || len(entries) != 0 {
				t.Fatalf("empty log: %v %v", entries, err)
			}
			fl := NewFollower(path, tc.format, offset, ReadOpts{})
			defer fl.Close()
			const lines = 5000
			var got []string
			follow := func() {
				es, err := fl.Next()
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					got = append(got, e.Log)
				}
			}
			for i := 0; i < lines; i++ {
				if err := w.Write("stdout", []byte(fmt.Sprintf("line %d\n", i))); err != nil {
					t.Fatal(err)
				}
				if i <= 3000 && i%37 == 0 || i > 3000 && i%100 == 0 { // now and then, across one rotation, later across two
					follow()
				}
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			follow()
			if len(got) != lines {
				t.Fatalf("followed %d lines of %d", len(got), lines)
			}
			for i, l := range got {
				if l != fmt.Sprintf("line %d\n", i) {
					t.Fatalf("line %d is %q", i, l)
				}
			}
			gz, _ := filepath.Glob(path + ".*.gz")
			if tc.compress != (len(gz) == 2) {
				t.Errorf("gzipped files: %v", gz)
			}
		})
	}
}
