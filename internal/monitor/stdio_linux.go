package monitor

import (
	"io"
	"os"

	"github.com/tent-project/tent/internal/runtime"
	"golang.org/x/sys/unix"
)

// stdio is a process's stdio as the monitor holds it, for a container's
// init and for exec'd processes alike: pipes, or with a terminal the pty
// master, which the process sends over a console socket.
type stdio struct {
	tty, openStdin bool
	child          [3]*os.File // the process's ends (nil: /dev/null)
	console        *os.File    // the process's end of the console socket
	recv           *os.File    // this end of it
	outputs        []*os.File  // stdout and stderr, or the master
	stdin          io.WriteCloser
	master         *os.File
	// childEnds are closed once the process has them.
	childEnds []*os.File
}

func newStdio(tty, openStdin bool) (*stdio, error) {
	s := &stdio{tty: tty, openStdin: openStdin}
	if tty {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, err
		}
		s.recv = os.NewFile(uintptr(fds[0]), "console")
		s.console = os.NewFile(uintptr(fds[1]), "console-child")
		s.childEnds = append(s.childEnds, s.console)
		return s, nil
	}
	for i := 1; i <= 2; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			s.close()
			return nil, err
		}
		s.child[i] = w
		s.childEnds = append(s.childEnds, w)
		s.outputs = append(s.outputs, r)
	}
	if openStdin {
		r, w, err := os.Pipe()
		if err != nil {
			s.close()
			return nil, err
		}
		s.child[0] = r
		s.childEnds = append(s.childEnds, r)
		s.stdin = w
	}
	return s, nil
}

// started closes the process's ends, which it now holds, and with a
// terminal receives the master (stdin then writes to it if openStdin).
func (s *stdio) started(openStdin bool) error {
	for _, f := range s.childEnds {
		f.Close()
	}
	s.childEnds = nil
	if s.recv == nil {
		return nil
	}
	defer s.recv.Close()
	m, err := runtime.RecvConsole(s.recv)
	if err != nil {
		return err
	}
	s.setMaster(m, openStdin)
	return nil
}

// newOCIStdio is newStdio for a runtime binary, which sends a terminal's
// master over a console socket of its own (ociStart), not this one's.
func newOCIStdio(tty, openStdin bool) (*stdio, error) {
	if tty {
		return &stdio{tty: true, openStdin: openStdin}, nil
	}
	return newStdio(false, openStdin)
}

// setMaster takes a terminal's master as the process's stdio.
func (s *stdio) setMaster(m *os.File, openStdin bool) {
	s.master = m
	s.outputs = append(s.outputs, m)
	if openStdin {
		s.stdin = nopCloser{m}
	}
}

// close releases everything (after a failed start, or once drained).
func (s *stdio) close() {
	for _, f := range s.childEnds {
		f.Close()
	}
	for _, f := range s.outputs {
		f.Close()
	}
	if s.recv != nil {
		s.recv.Close()
	}
	if s.stdin != nil {
		s.stdin.Close()
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
