package signals

import (
	"syscall"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want syscall.Signal
		ok   bool
	}{
		{"KILL", syscall.SIGKILL, true},
		{"sigterm", syscall.SIGTERM, true},
		{"SIGHUP", syscall.SIGHUP, true},
		{"9", syscall.SIGKILL, true},
		{"SIGRTMIN+3", 37, true},
		{"RTMAX", 64, true},
		{"0", 0, false},
		{"65", 0, false},
		{"FOO", 0, false},
		{"SIGRTMAX+1", 0, false},
	} {
		got, err := Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
