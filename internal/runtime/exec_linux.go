package runtime

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/nsenter"
)

// ExecOpts are the settings of one Exec.
type ExecOpts struct {
	// ConsoleSocket or ConsoleConn receive the pty master when the process
	// asks for a terminal (see CreateOpts).
	ConsoleSocket string
	ConsoleConn   *os.File
	// Stdio is handed to the process; nil entries get /dev/null.
	Stdio [3]*os.File
}

// Exec starts p inside the container and returns once p runs.
func (c *Container) Exec(p *specs.Process, o ExecOpts) (*Process, error) {
	switch st := c.Status(); st {
	case Stopped, Paused:
		return nil, fmt.Errorf("cannot exec in a %s container: %w", st, errdefs.ErrConflict)
	}
	if len(p.Args) == 0 {
		return nil, invalid("process args must not be empty")
	}
	if p.Cwd != "" && !filepath.IsAbs(p.Cwd) {
		return nil, invalid("process cwd %q must be an absolute path", p.Cwd)
	}
	if p.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, invalid("a terminal needs a console socket")
	}
	spec := c.rec.Spec
	if _, err := parseProcAttrs(p, spec.Linux.Personality, true); err != nil {
		return nil, err
	}
	pid := c.rec.Pid
	cfg := &initConfig{Spec: spec, Process: p, Console: p.Terminal, State: c.ociState(Running)}
	if c.rec.RootMount != 0 {
		// Its mount namespace is this one: the process goes to its root.
		cfg.Mounts, cfg.Rootfs = mountsShared, c.rec.Rootfs
	}
	var join []nsJoin
	var userns *os.File
	for _, ns := range spec.Linux.Namespaces {
		switch ns.Type {
		case specs.UserNamespace:
			// Joined by the child's entry point, before its Go runtime
			// starts threads (internal/nsenter).
			if !nsenter.Supported() {
				return nil, fmt.Errorf("exec into a container with a user namespace: %w", nsenter.ErrNoEntry)
			}
			f, err := os.Open(nsPath(pid, ns.Type))
			if err != nil {
				return nil, fmt.Errorf("exec: %w", err)
			}
			defer f.Close()
			userns = f
		case specs.MountNamespace:
			cfg.MountNS = nsPath(pid, ns.Type)
		default:
			join = append(join, nsJoin{ns.Type, nsPath(pid, ns.Type)})
		}
	}

	bin, release, err := c.rt.sealedBinary()
	if err != nil {
		return nil, err
	}
	defer release()
	syncParent, syncChild, err := socketPair("sync")
	if err != nil {
		return nil, err
	}
	defer syncParent.Close()
	defer syncChild.Close()
	files := []*os.File{syncChild, bin, nil, nil}
	if p.Terminal {
		console := o.ConsoleConn
		if o.ConsoleSocket != "" {
			if console, err = dialConsole(o.ConsoleSocket); err != nil {
				return nil, err
			}
			defer console.Close()
		}
		files[consoleFd-3] = console
	}
	var env []string
	if userns != nil {
		files = append(files, userns)
		env = append(env, nsenter.UserNSEnv+"="+strconv.Itoa(usernsFd))
	}
	cmd := childCmd("exec", o.Stdio, files, env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: p.Terminal}
	if err := startJoined(cmd, join); err != nil {
		return nil, fmt.Errorf("exec: %w", err)
	}
	syncChild.Close()
	fail := func(err error) (*Process, error) {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	cg, err := c.cgroup()
	if err != nil {
		return fail(err)
	}
	if err := cg.Apply(cmd.Process.Pid); err != nil {
		return fail(err)
	}
	ch := newChannel(syncParent)
	if err := ch.send(message{Type: msgConfig, Config: cfg}); err != nil {
		return fail(fmt.Errorf("exec: %w", err))
	}
	if _, err := ch.expect(msgReady); err != nil {
		return fail(err)
	}
	return &Process{cmd: cmd}, nil
}

func nsPath(pid int, t specs.LinuxNamespaceType) string {
	return "/proc/" + strconv.Itoa(pid) + "/ns/" + nsFile[t]
}
