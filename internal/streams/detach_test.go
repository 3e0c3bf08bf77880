package streams

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestParseDetachKeys(t *testing.T) {
	for in, want := range map[string][]byte{
		"": {16, 17}, "ctrl-p,ctrl-q": {16, 17}, "ctrl-a": {1}, "a,b": {'a', 'b'}, "ctrl-@,ctrl-_": {0, 31}, "ctrl-Z": {26},
	} {
		if got, err := ParseDetachKeys(in); err != nil || !bytes.Equal(got, want) {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"ctrl-", "ab", "ctrl-1", "a,,b"} {
		if _, err := ParseDetachKeys(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestEscapeReader(t *testing.T) {
	for _, c := range []struct {
		in, want string
		detached bool
	}{
		{"hello", "hello", false},
		{"ab\x10\x11cd", "ab", true},
		{"a\x10b\x10\x10\x11z", "a\x10b\x10", true}, // false starts pass through
		{"tail\x10", "tail\x10", false},             // an unfinished sequence at the end
	} {
		for _, oneByte := range []bool{false, true} {
			var r io.Reader = bytes.NewReader([]byte(c.in))
			if oneByte {
				r = iotest.OneByteReader(r)
			}
			got, err := io.ReadAll(NewEscapeReader(r, DefaultDetachKeys))
			if string(got) != c.want || errors.Is(err, ErrDetached) != c.detached {
				t.Errorf("%q (one byte at a time: %v): %q %v, want %q detached=%v", c.in, oneByte, got, err, c.want, c.detached)
			}
		}
	}
}
