package runtimecli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/signals"
	"golang.org/x/sys/unix"
)

// createFlags are shared by create and run.
type createFlags struct {
	bundle        string
	consoleSocket string
	pidFile       string
	noPivot       bool
	noNewKeyring  bool
	preserveFds   int
}

func (o *createFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVarP(&o.bundle, "bundle", "b", "", "path to the root of the bundle directory (default: current directory)")
	f.StringVar(&o.consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive the pty master")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the process id to")
	f.BoolVar(&o.noPivot, "no-pivot", false, "do not use pivot_root to jail the process inside the rootfs")
	f.BoolVar(&o.noNewKeyring, "no-new-keyring", false, "do not create a new session keyring for the container")
	f.IntVar(&o.preserveFds, "preserve-fds", 0, "pass N additional file descriptors to the container (not supported)")
}

func (o *createFlags) opts() (runtime.CreateOpts, error) {
	if o.preserveFds != 0 {
		return runtime.CreateOpts{}, fmt.Errorf("--preserve-fds is not supported: %w", errdefs.ErrNotImplemented)
	}
	bundle := o.bundle
	if bundle == "" {
		bundle = "."
	}
	return runtime.CreateOpts{
		Bundle:        bundle,
		ConsoleSocket: o.consoleSocket,
		NoPivot:       o.noPivot,
		NoNewKeyring:  o.noNewKeyring,
		Stdio:         [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
	}, nil
}

const detachTTYError = "cannot allocate tty if tent-runtime will detach without setting console socket"

func createCmd(g *globals) *cobra.Command {
	var o createFlags
	cmd := &cobra.Command{
		Use:   "create [flags] <container-id>",
		Short: "create a container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			opts, err := o.opts()
			if err != nil {
				return err
			}
			_, p, err := rt.Create(args[0], opts)
			if err != nil {
				return err
			}
			return writePidFile(o.pidFile, p.Pid())
		},
	}
	o.register(cmd)
	return cmd
}

func startCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "start <container-id>",
		Short: "start a created container",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			return c.Start()
		},
	}
}

func load(g *globals, id string) (*runtime.Container, error) {
	rt, err := g.runtime()
	if err != nil {
		return nil, err
	}
	return rt.Load(id)
}

func runCmd(g *globals) *cobra.Command {
	var o createFlags
	var detach, keep bool
	cmd := &cobra.Command{
		Use:   "run [flags] <container-id>",
		Short: "create and start a container, and wait for it unless detached",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			rt, err := g.runtime()
			if err != nil {
				return err
			}
			opts, err := o.opts()
			if err != nil {
				return err
			}
			spec, err := runtime.LoadSpec(opts.Bundle)
			if err != nil {
				return err
			}
			fg, err := newForeground(spec.Process.Terminal, opts.ConsoleSocket, detach)
			if err != nil {
				return err
			}
			defer fg.close()
			opts.ConsoleConn = fg.child
			c, p, err := rt.Create(args[0], opts)
			if err != nil {
				return err
			}
			if err := fg.attach(p); err != nil {
				_ = c.Delete(true)
				return err
			}
			if err := c.Start(); err != nil {
				fg.detach()
				_ = c.Delete(true)
				return err
			}
			if err := writePidFile(o.pidFile, p.Pid()); err != nil {
				return err
			}
			if detach {
				fg.detach()
				return nil
			}
			status, err := fg.wait(p)
			if !keep {
				if derr := c.Delete(true); derr != nil && err == nil {
					err = derr
				}
			}
			if err != nil {
				return err
			}
			return exitError{status}
		},
	}
	o.register(cmd)
	cmd.Flags().BoolVarP(&detach, "detach", "d", false, "detach from the container's process")
	cmd.Flags().BoolVar(&keep, "keep", false, "do not delete the container after it exits")
	return cmd
}

func stateCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "state <container-id>",
		Short: "print the state of a container as JSON",
		Args:  exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			return printJSON(c.State())
		},
	}
}

func printJSON(v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(os.Stdout, "%s\n", b)
	return err
}

func killCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "kill [flags] <container-id> [signal]",
		Short: "send a signal (default SIGTERM) to a container's init",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			sig := unix.SIGTERM
			if len(args) == 2 {
				s, err := signals.Parse(args[1])
				if err != nil {
					return err
				}
				sig = s
			}
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			return c.Signal(sig, all)
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "send the signal to every process of the container")
	return cmd
}

func deleteCmd(g *globals) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "delete [flags] <container-id>",
		Aliases: []string{"rm"},
		Short:   "delete a container and everything it holds",
		Args:    exactArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				if force && errdefs.IsNotFound(err) {
					// A create that died early may have left a directory.
					return os.RemoveAll(filepath.Join(g.root, args[0]))
				}
				return err
			}
			return c.Delete(force)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill the container first if it is still running")
	return cmd
}
