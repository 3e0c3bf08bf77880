package runtime

import (
	"fmt"
	"os"
	"os/signal"
	goruntime "runtime"
	"sync"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/nsenter"
	"golang.org/x/sys/unix"
)

// An init or exec helper keeps its main goroutine on the main thread:
// namespaces it unshares and credentials it sets are per thread, and
// /proc/PID/ns and the exec'd program must see them. Locking in an init
// function is what keeps main.main on the process's first thread.
func init() {
	if IsChild() {
		goruntime.LockOSThread()
	}
}

// IsChild reports whether this process was started by the runtime as a
// container's init or exec helper. A program embedding the runtime must
// then call ChildMain first thing in main.
func IsChild() bool { return os.Getenv(initEnv) != "" }

// ChildMain runs the container side of Create or Exec. It never returns:
// it either execs the container's program or exits with the error sent to
// the parent.
func ChildMain() {
	// Credentials, capabilities and seccomp are set per thread and carried
	// through execve by the thread that calls it: stay on one thread.
	goruntime.LockOSThread()
	mode := os.Getenv(initEnv)
	os.Clearenv()
	// Until exec, nothing in the container may ptrace this process or open
	// its /proc entries (and through them the runtime's files).
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	ch := newChannel(os.NewFile(syncFd, "sync"))
	err := childMain(mode, ch)
	if ch.send(message{Type: msgError, Error: err.Error(), Class: errdefs.ClassOf(err)}) != nil {
		// Past the handshake nobody listens on the socket any more: the
		// container's stderr is the only place left to say what failed.
		fmt.Fprintf(os.Stderr, "tent-runtime: %v\n", err)
	}
	os.Exit(127)
}

func childMain(mode string, ch *channel) error {
	// The entry point may have joined a user namespace; say if it failed.
	if err := nsenter.UserNSResult(); err != nil {
		return err
	}
	if mode == modePrestarted {
		WarmUp()
		dropSignals()
		// Its network namespace is new (prestartFlags): lo now, its
		// error (if any) reported with the config, as for any init.
		loopback()
		if err := receiveFiles(); err != nil {
			return err
		}
		mode = "init"
	}
	m, err := ch.expect(msgConfig)
	if err != nil {
		return err
	}
	unix.Close(binaryFd)
	if m.Config == nil || m.Config.Spec == nil || m.Config.Process == nil {
		return fmt.Errorf("container init: incomplete config")
	}
	if mode == "exec" {
		return execChild(m.Config, ch)
	}
	return initChild(m.Config, ch)
}

// initChild builds the container around this process, waits for Start, and
// execs the container's program.
func initChild(cfg *initConfig, ch *channel) error {
	spec := cfg.Spec
	// The mount namespace is made here rather than at clone time, so that
	// an init started ahead of its container (Prestart) sees the root file
	// system mounted since. This thread is the one that execs, and the
	// main one (see this file's init function), so the namespace is the
	// process's.
	if cfg.Mounts == mountsNew {
		if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("mount namespace: %w", err)
		}
	}
	if cfg.CgroupNS {
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return fmt.Errorf("cgroup namespace: %w", err)
		}
	}
	if cfg.NewNet {
		if err := loopback(); err != nil {
			return fmt.Errorf("bring up lo: %w", err)
		}
	}
	if err := mountRootfs(cfg); err != nil {
		return err
	}
	if h := spec.Hooks; h != nil {
		//lint:ignore SA1019 prestart is deprecated, but docker 20.10 still relies on it
		if len(h.Prestart)+len(h.CreateRuntime) > 0 {
			if err := ch.send(message{Type: msgHooks}); err != nil {
				return err
			}
			if _, err := ch.expect(msgHooksDone); err != nil {
				return err
			}
		}
		if err := runHooks("createContainer", h.CreateContainer, cfg.State); err != nil {
			return err
		}
	}
	pivot := pivotRoot
	switch {
	case cfg.Mounts == mountsShared:
		// The runtime's own namespace: its root must stay where it is.
		pivot = chrootTo
	case cfg.NoPivot:
		pivot = moveRoot
	}
	if err := pivot(cfg.Rootfs); err != nil {
		return err
	}
	if cfg.Console {
		sock := os.NewFile(consoleFd, "console")
		if err := setupConsole(sock, cfg.Process.ConsoleSize, int(cfg.Process.User.UID)); err != nil {
			return err
		}
		sock.Close()
	}
	if cfg.WaitNetwork {
		if err := ch.send(message{Type: msgNetwork}); err != nil {
			return err
		}
		if _, err := ch.expect(msgNetDone); err != nil {
			return err
		}
	}
	if err := finishRootfs(spec); err != nil {
		return err
	}
	if spec.Hostname != "" {
		if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
			return fmt.Errorf("sethostname: %w", err)
		}
	}
	if spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(spec.Domainname)); err != nil {
			return fmt.Errorf("setdomainname: %w", err)
		}
	}
	if !cfg.NoNewKeyring {
		// A keyring of its own, so the container cannot read the host's
		// session keys. Kernels without keyrings just go without.
		_, _ = unix.KeyctlJoinSessionKeyring(cfg.State.ID)
	}
	pr, err := prepareProcess(cfg.Process, spec, false)
	if err != nil {
		return err
	}
	if err := finishProcess(cfg.Process, pr); err != nil {
		return err
	}
	dropSignals() // done already in a prestarted init
	if err := ch.send(message{Type: msgReady}); err != nil {
		return err
	}
	ch.close()
	// From here on a failure (a startContainer hook, execve itself) ends
	// the init with its reason on the container's stderr, as with runc.

	// Block until Start writes to the exec fifo.
	fifo := os.NewFile(fifoFd, "exec.fifo")
	buf := make([]byte, 1)
	if _, err := fifo.Read(buf); err != nil {
		return fmt.Errorf("wait for start: %w", err)
	}
	fifo.Close()
	if h := spec.Hooks; h != nil {
		st := cfg.State
		st.Status = "running"
		if err := runHooks("startContainer", h.StartContainer, st); err != nil {
			return err
		}
	}
	return execProcess(cfg.Process, pr)
}

// dropSignals makes PID 1 of a new PID namespace catch every signal and
// drop it, from before the init's ready message until its execve (which
// puts the default dispositions back). From Start on the container runs
// its program, and a signal for it may come before the execve: the
// kernel gives PID 1 only the signals it has a handler for, so the
// program, with none yet, would not see it. Go's runtime would: it would
// try to die of the signal, fail as PID 1, and exit 2. Start may come
// (and a stop's SIGTERM after it) before the init runs again after its
// ready message: until session 19 it began catching only then, and a
// container stopped right after its start could end with status 2.
// (Before Start, Signal turns a terminating signal into SIGKILL.) The
// first Notify starts a thread of Go's (~1 ms here): a prestarted init
// does it while it waits for its container.
var dropSignals = sync.OnceFunc(func() {
	if unix.Getpid() == 1 {
		signal.Notify(make(chan os.Signal, 1))
	}
})

// loopback brings up lo once: a prestarted init does it before it knows
// its container.
var loopback = sync.OnceValue(loopbackUp)

// loopbackUp brings up lo in this thread's network namespace, as runc does
// in a namespace it made: 127.0.0.1 and ::1 then work in the container (the
// kernel gives lo its addresses as it comes up).
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// execChild enters a running container (the parent already joined its
// other namespaces and cgroup) and execs the process.
func execChild(cfg *initConfig, ch *channel) error {
	if cfg.MountNS != "" {
		fd, err := unix.Open(cfg.MountNS, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("open mount namespace: %w", err)
		}
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			return fmt.Errorf("unshare fs: %w", err)
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNS); err != nil {
			return fmt.Errorf("join mount namespace: %w", err)
		}
		unix.Close(fd)
	}
	if cfg.Mounts == mountsShared {
		if err := chrootTo(cfg.Rootfs); err != nil {
			return err
		}
	}
	if cfg.Console {
		sock := os.NewFile(consoleFd, "console")
		if err := setupConsole(sock, cfg.Process.ConsoleSize, int(cfg.Process.User.UID)); err != nil {
			return err
		}
		sock.Close()
	}
	pr, err := prepareProcess(cfg.Process, cfg.Spec, true)
	if err != nil {
		return err
	}
	// Before "ready", as an init's: its errors go to the caller, and an
	// exec -d's process has its credentials by the time the caller hears
	// of it (as with runc).
	if err := finishProcess(cfg.Process, pr); err != nil {
		return err
	}
	if err := ch.send(message{Type: msgReady}); err != nil {
		return err
	}
	ch.close()
	return execProcess(cfg.Process, pr)
}
