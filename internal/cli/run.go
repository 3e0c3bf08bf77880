package cli

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/streams"
	"golang.org/x/term"
)

// docker run (and start -a): create, attach, start, relay the streams,
// wait.

// startFailure is the exit status of a container that could not start,
// read from the error's text as the docker CLI does: the Engine API's
// error body has nothing else, and an auto-removed container is gone
// before its State.ExitCode (set by the daemon from the error's class)
// could be read.
func startFailure(err error) error {
	msg := err.Error()
	code := 125
	switch {
	case strings.Contains(msg, "executable file not found"), strings.Contains(msg, "no such file or directory"):
		code = 127
	case strings.Contains(msg, "permission denied"), strings.Contains(msg, "is a directory"):
		code = 126
	}
	return apiError(err, code)
}

func runCmd(a *app) *cobra.Command {
	f := &ctrFlags{}
	var detach, rm bool
	cmd := &cobra.Command{
		Use: "run [OPTIONS] IMAGE [COMMAND] [ARG...]", Short: "Create and run a new container from an image",
		Args: cobra.MinimumNArgs(1),
	}
	cmd.RunE = a.runE(func(args []string) error {
		req, err := f.config(cmd, args[0], args[1:], !detach)
		if err != nil {
			return statusError{code: 125, msg: "tent: " + err.Error()}
		}
		if f.tty && !detach && f.interactive && !term.IsTerminal(int(os.Stdin.Fd())) {
			return statusError{code: 1, msg: "the input device is not a TTY"}
		}
		id, err := a.create(req, f.name)
		if err != nil {
			return err
		}
		if detach {
			if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/start", nil, nil, nil); err != nil {
				return startFailure(err)
			}
			fmt.Println(id)
			return nil
		}
		keys, err := streams.ParseDetachKeys(f.detachKeys)
		if err != nil {
			return statusError{code: 125, msg: "tent: " + err.Error()}
		}
		return a.runAttached(id, f.interactive, f.tty, rm, keys)
	})
	f.add(cmd.Flags())
	cmd.Flags().StringVar(&f.detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "run container in background and print container ID")
	cmd.Flags().BoolVar(&rm, "rm", false, "automatically remove the container when it exits")
	return cmd
}

// runAttached attaches, registers a wait, starts, relays stdio and returns
// the container's exit status.
func (a *app) runAttached(id string, stdin, tty, autoRemove bool, detachKeys []byte) error {
	q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
	if stdin {
		q.Set("stdin", "1")
	}
	cond := "next-exit"
	if autoRemove {
		cond = "removed"
	}
	// The wait is registered while the attach is made: both must be in
	// place before the start, neither needs the other.
	type answer struct {
		resp *http.Response
		err  error
	}
	waited := make(chan answer, 1)
	go func() {
		resp, err := a.c.Do(a.ctx, http.MethodPost, "/containers/"+id+"/wait", url.Values{"condition": {cond}}, nil, "")
		waited <- answer{resp, err}
	}()
	conn, br, err := a.c.Hijack(a.ctx, "/containers/"+id+"/attach", q, nil)
	w := <-waited
	if w.err == nil {
		defer w.resp.Body.Close()
	}
	if err != nil {
		return apiError(err, 125)
	}
	defer conn.Close()
	if w.err != nil {
		return apiError(w.err, 125)
	}
	waitResp := w.resp
	if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/start", nil, nil, nil); err != nil {
		return startFailure(err)
	}
	restore, detached := a.relay(conn, br, stdin, tty, detachKeys, func(h, w int) {
		a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/resize", url.Values{"h": {fmt.Sprint(h)}, "w": {fmt.Sprint(w)}}, nil, nil)
	})
	restore()
	if detached {
		return nil // the container goes on, as after docker's ctrl-p ctrl-q
	}
	var status container.WaitResponse
	if err := json.NewDecoder(waitResp.Body).Decode(&status); err != nil {
		return statusError{code: 125, msg: "error waiting for container: " + err.Error()}
	}
	if status.Error != nil && status.Error.Message != "" {
		fmt.Fprintln(os.Stderr, "Error waiting for container:", status.Error.Message)
	}
	if status.StatusCode != 0 {
		return statusError{code: int(status.StatusCode)}
	}
	return nil
}

// relay copies our stdin to conn and its output to our stdout/stderr
// until the output ends. With a terminal, stdin is put in raw mode, the
// size follows ours, and typing detachKeys (nil: docker's ctrl-p ctrl-q)
// leaves the container running: detached says so. restore undoes the
// terminal changes.
func (a *app) relay(conn net.Conn, br *bufio.Reader, stdin, tty bool, detachKeys []byte, resize func(h, w int)) (restore func(), detached bool) {
	restore = func() {}
	fd := int(os.Stdin.Fd())
	if tty && term.IsTerminal(fd) {
		if st, err := term.MakeRaw(fd); err == nil {
			restore = func() { term.Restore(fd, st) }
		}
	}
	if tty {
		sendSize := func() {
			if w, h, err := term.GetSize(int(os.Stdout.Fd())); err == nil {
				resize(h, w)
			}
		}
		sendSize()
		winch := make(chan os.Signal, 1)
		signal.Notify(winch, syscall.SIGWINCH)
		go func() {
			for range winch {
				sendSize()
			}
		}()
	}
	var escaped atomic.Bool
	if stdin {
		var in io.Reader = os.Stdin
		if tty {
			if detachKeys == nil {
				detachKeys = streams.DefaultDetachKeys
			}
			in = streams.NewEscapeReader(in, detachKeys)
		}
		go func() {
			if _, err := io.Copy(conn, in); errors.Is(err, streams.ErrDetached) {
				escaped.Store(true)
				conn.Close() // the output ends too
				return
			}
			if cw, ok := conn.(interface{ CloseWrite() error }); ok {
				cw.CloseWrite()
			}
		}()
	}
	if tty {
		io.Copy(os.Stdout, br)
	} else {
		streams.Demux(os.Stdout, os.Stderr, br)
	}
	return restore, escaped.Load()
}
