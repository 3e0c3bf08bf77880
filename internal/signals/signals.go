package signals

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	sigrtmin = 34
	sigrtmax = 64
)

// Parse returns the signal named by s.
func Parse(s string) (syscall.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > sigrtmax {
			return 0, fmt.Errorf("invalid signal number %d", n)
		}
		return syscall.Signal(n), nil
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMIN"); ok {
		return rt(s, sigrtmin, rest)
	}
	if rest, ok := strings.CutPrefix(name, "SIGRTMAX"); ok {
		return rt(s, sigrtmax, rest)
	}
	if sig := unix.SignalNum(name); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q", s)
}

func rt(orig string, base int, off string) (syscall.Signal, error) {
	if off == "" {
		return syscall.Signal(base), nil
	}
	n, err := strconv.Atoi(off)
	sig := base + n
	if err != nil || sig < sigrtmin || sig > sigrtmax {
		return 0, fmt.Errorf("unknown signal %q", orig)
	}
	return syscall.Signal(sig), nil
}
