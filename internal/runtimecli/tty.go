package runtimecli

import (
	"io"
	"os"
	"os/signal"
	"time"

	"github.com/tent-project/tent/internal/runtime"
	"golang.org/x/sys/unix"
	"golang.org/x/term"
)

// consolePair makes the socket on which the runtime receives a pty master
// for a foreground run or exec with a terminal. The child end goes to the
// container; the parent end is read with runtime.RecvConsole.
func consolePair() (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return os.NewFile(uintptr(fds[0]), "console-parent"), os.NewFile(uintptr(fds[1]), "console-child"), nil
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
