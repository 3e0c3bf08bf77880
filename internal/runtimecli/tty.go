package runtimecli

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/tent-project/tent/internal/runtime"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// foreground is the plumbing between this command and a process it runs
// in the foreground (run, exec): the pty when the process has a terminal
// and no console socket was given, and the signals we receive.
type foreground struct {
	parent, child *os.File // console socket pair, when we own the terminal
	master        *os.File
	drain, stop   func()
}

// newForeground prepares the console socket pair if the process wants a
// terminal and the caller gave no console socket; child then goes to the
// runtime as ConsoleConn. Detached processes cannot have one.
func newForeground(terminal bool, consoleSocket string, detach bool) (*foreground, error) {
	f := &foreground{drain: func() {}, stop: func() {}}
	if !terminal || consoleSocket != "" {
		return f, nil
	}
	if detach {
		return nil, errors.New(detachTTYError)
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f.parent, f.child = os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child")
	return f, nil
}

// attach receives the pty master (if we own the terminal), starts copying
// between it and our stdio, and starts relaying signals to p.
func (f *foreground) attach(p *runtime.Process) error {
	if f.parent != nil {
		m, err := runtime.RecvConsole(f.parent)
		if err != nil {
			return err
		}
		f.master = m
		f.drain = proxy(m)
	}
	f.stop = forward(p, f.master)
	return nil
}

// wait waits for p, then stops the plumbing once its output is drained.
func (f *foreground) wait(p *runtime.Process) (int, error) {
	status, err := p.Wait()
	f.detach()
	return status, err
}

// detach stops relaying signals and copying output.
func (f *foreground) detach() {
	f.stop()
	f.drain()
}

func (f *foreground) close() {
	for _, c := range []*os.File{f.parent, f.child, f.master} {
		if c != nil {
			c.Close()
		}
	}
}

// proxy copies between our stdio and a pty master, with our terminal (if
// stdin is one) in raw mode. The returned function waits for the output
// to drain and restores the terminal.
func proxy(master *os.File) func() {
	restore := func() {}
	if fd := int(os.Stdin.Fd()); term.IsTerminal(fd) {
		if st, err := term.MakeRaw(fd); err == nil {
			restore = func() { _ = term.Restore(fd, st) }
		}
		resize(master)
	}
	go func() { _, _ = io.Copy(master, os.Stdin) }()
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(os.Stdout, master)
		close(done)
	}()
	return func() {
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
		restore()
	}
}

// resize gives the pty the size of our terminal.
func resize(master *os.File) {
	ws, err := unix.IoctlGetWinsize(int(os.Stdin.Fd()), unix.TIOCGWINSZ)
	if err == nil {
		_ = unix.IoctlSetWinsize(int(master.Fd()), unix.TIOCSWINSZ, ws)
	}
}

// forward relays the signals we receive to p (and window size changes to
// master, if any) until stop is called.
func forward(p *runtime.Process, master *os.File) (stop func()) {
	ch := make(chan os.Signal, 64)
	signal.Notify(ch)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case <-quit:
				return
			case s := <-ch:
				switch s {
				case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
					// Ours, or the Go runtime's: not for the container.
				case unix.SIGWINCH:
					if master != nil {
						resize(master)
					}
				default:
					_ = p.Signal(s)
				}
			}
		}
	}()
	return func() {
		signal.Stop(ch)
		close(quit)
	}
}
