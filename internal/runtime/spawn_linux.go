package runtime

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// sealedSelf returns a sealed in-memory copy of the running binary. The
// container's init and exec processes are started from it, so that
// /proc/<pid>/exe inside the container points at a file that cannot be
// written (CVE-2019-5736) rather than at the runtime binary on the host.
// A process that already runs from a sealed copy (the engine starts its
// monitors from one, see SealBinary) reuses it instead of copying again.
func sealedSelf() (*os.File, error) {
	self, err := os.Open("/proc/self/exe")
	if err != nil {
		return nil, err
	}
	if sealed(self) {
		return self, nil
	}
	defer self.Close()
	return sealCopy(self)
}

// sealedBinary returns the sealed binary that inits and exec helpers start
// from, and how to release it.
func (r *Runtime) sealedBinary() (*os.File, func(), error) {
	if r.binary != nil {
		return r.binary, func() {}, nil
	}
	bin, err := sealedSelf()
	if err != nil {
		return nil, nil, err
	}
	return bin, func() { bin.Close() }, nil
}

// immutable are the seals that make a memfd's contents unchangeable.
const immutable = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE

// sealed tells whether f is a memfd whose contents can no longer change.
func sealed(f *os.File) bool {
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	return err == nil && seals&immutable == immutable
}

// SealBinary returns a sealed in-memory copy of the executable at path.
// Processes started from it (through /proc/self/fd/N) run from a file that
// nothing can modify, and the runtime inside them uses it for container
// inits without copying the binary again.
func SealBinary(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return sealCopy(f)
}

// sealCopy copies src into a new memfd and seals it.
func sealCopy(src *os.File) (*os.File, error) {
	fd, err := unix.MemfdCreate("tent-runtime", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	mem := os.NewFile(uintptr(fd), "memfd:tent-runtime")
	if _, err := io.Copy(mem, src); err != nil {
		mem.Close()
		return nil, fmt.Errorf("copy runtime binary: %w", err)
	}
	if _, err := unix.FcntlInt(mem.Fd(), unix.F_ADD_SEALS, immutable); err != nil {
		mem.Close()
		return nil, fmt.Errorf("seal runtime binary: %w", err)
	}
	return mem, nil
}

// socketPair returns the two ends of a stream socket, close-on-exec.
func socketPair(name string) (parent, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), name+"-parent"), os.NewFile(uintptr(fds[1]), name+"-child"), nil
}

// nsFlag maps an OCI namespace type to its clone flag.
var nsFlag = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace:     unix.CLONE_NEWPID,
	specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace:   unix.CLONE_NEWNS,
	specs.IPCNamespace:     unix.CLONE_NEWIPC,
	specs.UTSNamespace:     unix.CLONE_NEWUTS,
	specs.UserNamespace:    unix.CLONE_NEWUSER,
	specs.CgroupNamespace:  unix.CLONE_NEWCGROUP,
	specs.TimeNamespace:    unix.CLONE_NEWTIME,
}

// nsFile is the name of a namespace under /proc/<pid>/ns.
var nsFile = map[specs.LinuxNamespaceType]string{
	specs.PIDNamespace:     "pid",
	specs.NetworkNamespace: "net",
	specs.MountNamespace:   "mnt",
	specs.IPCNamespace:     "ipc",
	specs.UTSNamespace:     "uts",
	specs.UserNamespace:    "user",
	specs.CgroupNamespace:  "cgroup",
	specs.TimeNamespace:    "time",
}

// nsJoin is a namespace to enter before forking.
type nsJoin struct {
	typ  specs.LinuxNamespaceType
	path string
}

// startJoined starts cmd after entering the namespaces in join. Namespaces
// are per thread, so this runs on a locked OS thread that is thrown away
// afterwards; the child inherits the thread's namespaces (for a PID
// namespace: the child is the first process created in it).
func startJoined(cmd *exec.Cmd, join []nsJoin) error {
	if len(join) == 0 {
		return cmd.Start()
	}
	errc := make(chan error, 1)
	go func() {
		// No UnlockOSThread: the thread has left the runtime's namespaces
		// and must end with this goroutine.
		goruntime.LockOSThread()
		errc <- func() error {
			fds := make([]int, len(join))
			for i, j := range join {
				fd, err := unix.Open(j.path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					return fmt.Errorf("open %s namespace %s: %w", j.typ, j.path, err)
				}
				defer unix.Close(fd)
				fds[i] = fd
			}
			for i, j := range join {
				if j.typ == specs.MountNamespace {
					// setns into a mount namespace needs an fs_struct of our own.
					if err := unix.Unshare(unix.CLONE_FS); err != nil {
						return fmt.Errorf("unshare fs: %w", err)
					}
				}
				if err := unix.Setns(fds[i], int(nsFlag[j.typ])); err != nil {
					return fmt.Errorf("join %s namespace %s: %w", j.typ, j.path, err)
				}
			}
			return cmd.Start()
		}()
	}()
	return <-errc
}

// Process is a process this invocation started (a container's init or an
// exec'd process) and can wait for.
type Process struct {
	cmd *exec.Cmd
}

// Pid returns the host PID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Signal sends sig to the process.
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Wait waits for the process to exit and returns its status the way a
// shell reports it: the exit code, or 128 plus the signal that killed it.
func (p *Process) Wait() (int, error) {
	err := p.cmd.Wait()
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return -1, err
	}
	if ws.Signaled() {
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

// childCmd builds the command that re-executes the sealed binary as an init
// (mode "init") or exec helper (mode "exec") with the given extra files
// from fd 3 on (files[1] must be the sealed binary itself) and env added.
func childCmd(mode string, stdio [3]*os.File, files []*os.File, env ...string) *exec.Cmd {
	cmd := &exec.Cmd{
		Path:       "/proc/self/fd/" + strconv.Itoa(binaryFd),
		Args:       []string{"tent-runtime", mode},
		Env:        append([]string{initEnv + "=" + mode, "GOMAXPROCS=1"}, env...),
		ExtraFiles: files,
	}
	// Assign only real files: a nil *os.File in an interface is not nil.
	if stdio[0] != nil {
		cmd.Stdin = stdio[0]
	}
	if stdio[1] != nil {
		cmd.Stdout = stdio[1]
	}
	if stdio[2] != nil {
		cmd.Stderr = stdio[2]
	}
	return cmd
}

// initEnv marks a process as tent's init or exec helper; its value is
// the mode: "init", "exec", or modePrestarted.
const initEnv = "_TENT_INIT"

// modePrestarted is an init started ahead of its container (Prestart).
const modePrestarted = "prestarted"
