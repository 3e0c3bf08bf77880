package jsonlog

import (
	"fmt"
	"path/filepath"
	"testing"
)

// TestFollowAcrossRotation writes 5,000 lines into a log that rotates
// every few hundred while a follower reads it, and checks every line
// comes once, in order.
func TestFollowAcrossRotation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ctr-json.log")
	w, err := NewWriter(path, 4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	entries, offset, err := Read(path, ReadOpts{Tail: -1})
	if err != nil || len(entries) != 0 {
		t.Fatalf("empty log: %v %v", entries, err)
	}
	fl := NewFollower(path, offset, ReadOpts{})
	defer fl.Close()
	const lines = 5000
	var got []string
	for i := 0; i < lines; i++ {
		if err := w.Write("stdout", []byte(fmt.Sprintf("line %d\n", i))); err != nil {
			t.Fatal(err)
		}
		if i <= 3000 && i%37 == 0 || i > 3000 && i%100 == 0 { // now and then, across one rotation, later across two
			es, err := fl.Next()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range es {
				got = append(got, e.Log)
			}
		}
	}
	w.Close()
	es, err := fl.Next()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		got = append(got, e.Log)
	}
	if len(got) != lines {
		t.Fatalf("followed %d lines of %d", len(got), lines)
	}
	for i, l := range got {
		if l != fmt.Sprintf("line %d\n", i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
}
