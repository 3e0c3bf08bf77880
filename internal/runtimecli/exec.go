package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/runtime"
)

type execFlags struct {
	process       string
	consoleSocket string
	pidFile       string
	cwd           string
	env           []string
	tty           bool
	user          string
	gids          []int64
	caps          []string
	noNewPrivs    bool
	detach        bool
	apparmor      string
	label         string
	cgroup        []string
	preserveFds   int
}

func execCmd(g *globals) *cobra.Command {
	var o execFlags
	cmd := &cobra.Command{
		Use:   "exec [flags] <container-id> <command> [args...]",
		Short: "run a process inside a running container",
		Args:  minArgs(1, "container id"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := load(g, args[0])
			if err != nil {
				return err
			}
			if o.preserveFds != 0 {
				return errors.New("--preserve-fds is not supported")
			}
			p, err := o.buildProcess(c.Spec(), args[1:])
			if err != nil {
				return err
			}
			opts := runtime.ExecOpts{
				ConsoleSocket: o.consoleSocket,
				Stdio:         [3]*os.File{os.Stdin, os.Stdout, os.Stderr},
			}
			fg, err := newForeground(p.Terminal, o.consoleSocket, o.detach)
			if err != nil {
				return err
			}
			defer fg.close()
			opts.ConsoleConn = fg.child
			proc, err := c.Exec(p, opts)
			if err != nil {
				return err
			}
			if err := writePidFile(o.pidFile, proc.Pid()); err != nil {
				return err
			}
			if o.detach {
				return nil
			}
			if err := fg.attach(proc); err != nil {
				_ = proc.Signal(os.Kill)
				return err
			}
			status, err := fg.wait(proc)
			if err != nil {
				return err
			}
			return exitError{status}
		},
	}
	cmd.Flags().SetInterspersed(false)
	f := cmd.Flags()
	f.StringVarP(&o.process, "process", "p", "", "path to a process.json")
	f.StringVar(&o.consoleSocket, "console-socket", "", "path to an AF_UNIX socket which will receive the pty master")
	f.StringVar(&o.pidFile, "pid-file", "", "file to write the process id to")
	f.StringVar(&o.cwd, "cwd", "", "current working directory in the container")
	f.StringArrayVarP(&o.env, "env", "e", nil, "set an environment variable")
	f.BoolVarP(&o.tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.StringVarP(&o.user, "user", "u", "", "UID (format: <uid>[:<gid>])")
	f.Int64SliceVarP(&o.gids, "additional-gids", "g", nil, "additional gids")
	f.StringArrayVarP(&o.caps, "cap", "c", nil, "add a capability to the bounding set for the process")
	f.BoolVar(&o.noNewPrivs, "no-new-privs", false, "set the no new privileges value for the process")
	f.BoolVarP(&o.detach, "detach", "d", false, "detach from the process")
	f.StringVar(&o.apparmor, "apparmor", "", "apparmor profile (ignored: no AppArmor support)")
	f.StringVar(&o.label, "process-label", "", "SELinux label (ignored: no SELinux support)")
	f.StringArrayVar(&o.cgroup, "cgroup", nil, "sub-cgroup (not supported)")
	f.IntVar(&o.preserveFds, "preserve-fds", 0, "pass N additional file descriptors (not supported)")
	return cmd
}

// buildProcess reads --process, or derives the process from the
// container's own with the command line's overrides, as runc does.
func (o *execFlags) buildProcess(spec *specs.Spec, args []string) (*specs.Process, error) {
	if o.process != "" {
		b, err := os.ReadFile(o.process)
		if err != nil {
			return nil, err
		}
		var p specs.Process
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("malformed process.json: %w", err)
		}
		return &p, nil
	}
	if len(args) == 0 {
		return nil, errors.New("exec needs a command, or --process")
	}
	p := *spec.Process
	p.Args = args
	p.Terminal = o.tty
	p.ConsoleSize = nil
	p.Env = append(append([]string(nil), p.Env...), o.env...)
	if o.cwd != "" {
		p.Cwd = o.cwd
	}
	if o.user != "" {
		uid, gid, hasGid := strings.Cut(o.user, ":")
		u, err := strconv.ParseUint(uid, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("invalid --user %q: want <uid>[:<gid>]", o.user)
		}
		p.User.UID = uint32(u)
		if hasGid {
			g, err := strconv.ParseUint(gid, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("invalid --user %q: want <uid>[:<gid>]", o.user)
			}
			p.User.GID = uint32(g)
		}
	}
	for _, g := range o.gids {
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	if len(o.caps) > 0 {
		c := specs.LinuxCapabilities{}
		if p.Capabilities != nil {
			c = *p.Capabilities
		}
		for _, name := range o.caps {
			n, err := caps.Parse(name)
			if err != nil {
				return nil, err
			}
			full := caps.Name(n)
			c.Bounding = append(c.Bounding, full)
			c.Effective = append(c.Effective, full)
			c.Permitted = append(c.Permitted, full)
		}
		p.Capabilities = &c
	}
	if o.noNewPrivs {
		p.NoNewPrivileges = true
	}
	return &p, nil
}
