//go:build linux

package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"

	"github.com/tent-project/tent/internal/vm/wire"
	"golang.org/x/sys/unix"
)

// The agent's own programs, started by re-executing itself: the
// workload's shim and the copier's helper.

// copierArg makes tent-agent the copier's helper (internal/copier: a
// put into the running workload's root, docker cp).
const copierArg = wire.HelperCopier

// helperCmd is an exec of the agent's own helper, p.Helper: as root,
// with the workload's root (the agent's own, since its chroot) as
// descriptor 3.
func helperCmd(p *wire.Process) (*exec.Cmd, error) {
	if len(p.Helper) == 0 || p.Helper[0] != copierArg {
		return nil, fmt.Errorf("no helper %q", p.Helper)
	}
	root, err := os.Open("/")
	if err != nil {
		return nil, err
	}
	return &exec.Cmd{Path: "/proc/self/exe", Args: append([]string{"tent-init"}, p.Helper...), Dir: "/",
		ExtraFiles: []*os.File{root}}, nil
}

// shimArg makes tent-agent the workload's shim (shimMain).
const shimArg = "workload-shim"

const shimEnv = "TENT_AGENT_SHIM"

// shimSpec is what the shim execs.
type shimSpec struct {
	Path   string   `json:"path"`
	Args   []string `json:"args"`
	Env    []string `json:"env"`
	Dir    string   `json:"dir"`
	UID    uint32   `json:"uid"`
	GID    uint32   `json:"gid"`
	Groups []uint32 `json:"groups,omitempty"`
}

// asPID1 makes cmd start the workload as PID 1 of a PID namespace of its
// own, as a container's is (signals without a handler do not end it,
// its children are its own): the agent itself is started there as a
// shim that mounts the namespace's /proc, takes the workload's user and
// directory and execs it.
func asPID1(cmd *exec.Cmd) error {
	cred := cmd.SysProcAttr.Credential
	b, err := json.Marshal(shimSpec{Path: cmd.Path, Args: cmd.Args, Env: cmd.Env, Dir: cmd.Dir, UID: cred.Uid, GID: cred.Gid, Groups: cred.Groups})
	if err != nil {
		return err
	}
	cmd.Path, cmd.Args, cmd.Env, cmd.Dir = "/proc/self/exe", []string{"tent-init", shimArg}, []string{shimEnv + "=" + string(b)}, "/"
	cmd.SysProcAttr.Credential = nil
	cmd.SysProcAttr.Cloneflags = unix.CLONE_NEWPID
	return nil
}

// shimMain is the workload's start in its PID namespace; it never
// returns.
func shimMain() {
	var sp shimSpec
	err := json.Unmarshal([]byte(os.Getenv(shimEnv)), &sp)
	if err == nil {
		err = unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NOEXEC|unix.MS_NODEV, "")
	}
	if err == nil {
		groups := make([]int, len(sp.Groups))
		for i, g := range sp.Groups {
			groups[i] = int(g)
		}
		err = errors.Join(unix.Setgroups(groups), unix.Setgid(int(sp.GID)), unix.Setuid(int(sp.UID)))
	}
	if err == nil {
		err = os.Chdir(sp.Dir)
	}
	if err == nil {
		err = unix.Exec(sp.Path, sp.Args, sp.Env)
	}
	fmt.Fprintf(os.Stderr, "exec %s: %v\n", sp.Path, err)
	if errors.Is(err, unix.ENOENT) {
		os.Exit(127)
	}
	os.Exit(126)
}
