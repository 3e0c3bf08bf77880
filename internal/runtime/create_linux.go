package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/errdefs"
	"golang.org/x/sys/unix"
)

// CreateOpts are the settings of one Create.
type CreateOpts struct {
	// Bundle is the directory holding config.json.
	Bundle string
	// ConsoleSocket is the path of a unix socket that receives the pty
	// master when the process asks for a terminal.
	ConsoleSocket string
	// ConsoleConn, instead of ConsoleSocket, is an already connected socket.
	ConsoleConn *os.File
	// NoPivot roots the container with MS_MOVE and chroot instead of
	// pivot_root (for a root on ramfs, where pivot_root cannot work).
	NoPivot bool
	// NoNewKeyring keeps the caller's session keyring.
	NoNewKeyring bool
	// Stdio is handed to the container's process; nil entries get /dev/null.
	Stdio [3]*os.File
	// Prestarted, if set, is used as the container's init when its
	// namespaces fit, and ended otherwise: Create owns it either way.
	Prestarted *Prestarted
	// Network, if set, configures the container's new network namespace
	// from outside while the init sets up its root: it is called with
	// the init's pid as the init gets its config (the namespace exists by
	// then), and the init waits for it before it applies the spec's
	// sysctls, which so find the interfaces it made (as a runc prestart
	// hook configures the network). Its error fails the create. It is not
	// called for a container without a network namespace of its own.
	Network func(pid int) error
}

// LoadSpec reads and checks bundle/config.json.
func LoadSpec(bundle string) (*specs.Spec, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("bundle %s: config.json not found: %w", bundle, errdefs.ErrInvalidArgument)
		}
		return nil, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("bundle %s: malformed config.json: %v: %w", bundle, err, errdefs.ErrInvalidArgument)
	}
	if err := validateSpec(&s); err != nil {
		return nil, fmt.Errorf("bundle %s: config.json: %w", bundle, err)
	}
	return &s, nil
}

func invalid(format string, a ...any) error {
	return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
}

func validateSpec(s *specs.Spec) error {
	if s.Root == nil || s.Root.Path == "" {
		return invalid("root.path must be set")
	}
	if s.Process == nil {
		return invalid("process must be set")
	}
	if len(s.Process.Args) == 0 {
		return invalid("process.args must not be empty")
	}
	if s.Process.Cwd != "" && !filepath.IsAbs(s.Process.Cwd) {
		return invalid("process.cwd %q must be an absolute path", s.Process.Cwd)
	}
	if err := validateCaps(s.Process.Capabilities); err != nil {
		return err
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	seen := map[specs.LinuxNamespaceType]bool{}
	hasUser := false
	for _, ns := range s.Linux.Namespaces {
		if _, ok := nsFlag[ns.Type]; !ok {
			return invalid("unknown namespace type %q", ns.Type)
		}
		if seen[ns.Type] {
			return invalid("namespace %q listed twice", ns.Type)
		}
		seen[ns.Type] = true
		if ns.Type == specs.UserNamespace {
			hasUser = true
			if ns.Path != "" {
				return fmt.Errorf("joining an existing user namespace (%s) is not supported: %w", ns.Path, errdefs.ErrNotImplemented)
			}
		}
	}
	if err := checkLSM(s); err != nil {
		return err
	}
	if _, err := parseProcAttrs(s.Process, s.Linux.Personality, false); err != nil {
		return err
	}
	if len(s.Linux.TimeOffsets) > 0 {
		return fmt.Errorf("linux.timeOffsets: time namespace offsets are not supported by tent-runtime yet: %w", errdefs.ErrNotImplemented)
	}
	if s.Linux.IntelRdt != nil {
		return fmt.Errorf("linux.intelRdt: Intel RDT is not supported by tent-runtime yet: %w", errdefs.ErrNotImplemented)
	}
	if (len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0) && !hasUser {
		return invalid("uid/gid mappings need a user namespace")
	}
	if hasUser && (len(s.Linux.UIDMappings) == 0 || len(s.Linux.GIDMappings) == 0) {
		return invalid("a user namespace needs uidMappings and gidMappings")
	}
	if s.Hostname != "" && !seen[specs.UTSNamespace] {
		return invalid("hostname needs a private UTS namespace")
	}
	for key := range s.Linux.Sysctl {
		if err := checkSysctl(key, seen); err != nil {
			return err
		}
	}
	for _, m := range s.Mounts {
		if !filepath.IsAbs(m.Destination) {
			return invalid("mount destination %q must be absolute", m.Destination)
		}
	}
	if s.Process.Terminal && s.Process.ConsoleSize != nil && (s.Process.ConsoleSize.Width == 0 || s.Process.ConsoleSize.Height == 0) {
		s.Process.ConsoleSize = nil
	}
	return nil
}

// validateCaps refuses capability names that do not exist at all (names
// the running kernel merely lacks are dropped later, as runc does).
func validateCaps(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	for _, set := range [][]string{c.Bounding, c.Effective, c.Permitted, c.Inheritable, c.Ambient} {
		if _, err := caps.Mask(set); err != nil {
			return invalid("%v", err)
		}
	}
	return nil
}

// checkSysctl allows only sysctls that belong to a namespace the container
// owns, so a container cannot change the host's kernel settings.
func checkSysctl(key string, ns map[specs.LinuxNamespaceType]bool) error {
	ipc := map[string]bool{"kernel.msgmax": true, "kernel.msgmnb": true, "kernel.msgmni": true,
		"kernel.sem": true, "kernel.shmall": true, "kernel.shmmax": true, "kernel.shmmni": true,
		"kernel.shm_rmid_forced": true}
	switch {
	case ipc[key] || len(key) > 12 && key[:12] == "fs.mqueue.":
		if !ns[specs.IPCNamespace] {
			return invalid("sysctl %q needs a private IPC namespace", key)
		}
	case len(key) > 4 && key[:4] == "net.":
		if !ns[specs.NetworkNamespace] {
			return invalid("sysctl %q needs a private network namespace", key)
		}
	case key == "kernel.hostname" || key == "kernel.domainname":
		if !ns[specs.UTSNamespace] {
			return invalid("sysctl %q needs a private UTS namespace", key)
		}
	default:
		return invalid("sysctl %q is not namespaced and cannot be set in a container", key)
	}
	return nil
}

// Create builds the container id from a bundle and leaves its init waiting
// for Start. The returned Process is the init; callers that stay around
// (run) can wait for it, others simply exit and leave it running.
func (r *Runtime) Create(id string, o CreateOpts) (c *Container, p *Process, err error) {
	pre := o.Prestarted // ended unless it becomes the init
	defer func() {
		if pre != nil {
			pre.Close()
		}
	}()
	if err := validID(id); err != nil {
		return nil, nil, err
	}
	bundle, err := filepath.Abs(o.Bundle)
	if err != nil {
		return nil, nil, err
	}
	spec, err := LoadSpec(bundle)
	if err != nil {
		return nil, nil, err
	}
	rootfs := spec.Root.Path
	if !filepath.IsAbs(rootfs) {
		rootfs = filepath.Join(bundle, rootfs)
	}
	mounts := mountsShared
	for _, ns := range spec.Linux.Namespaces {
		if ns.Type == specs.MountNamespace {
			mounts = mountsNew
			if ns.Path != "" {
				mounts = mountsJoined
			}
		}
	}
	// In a joined mount namespace the path is the init's to resolve.
	if fi, err := os.Stat(rootfs); mounts != mountsJoined && (err != nil || !fi.IsDir()) {
		return nil, nil, invalid("rootfs %s: not a directory", rootfs)
	}
	if spec.Process.Terminal && o.ConsoleSocket == "" && o.ConsoleConn == nil {
		return nil, nil, invalid("a terminal needs a console socket")
	}
	cgPath, err := cgroups.ConvertPath(spec.Linux.CgroupsPath, id, r.systemdCgroup)
	if err != nil {
		return nil, nil, invalid("%v", err)
	}

	if err := os.MkdirAll(r.root, 0o700); err != nil {
		return nil, nil, err
	}
	dir := filepath.Join(r.root, id)
	if err := os.Mkdir(dir, stateDirOK); err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, nil, fmt.Errorf("container with id %q already exists: %w", id, errdefs.ErrAlreadyExists)
		}
		return nil, nil, err
	}
	// From here on, a failure removes everything created so far.
	var (
		cmd       *exec.Cmd
		cg        cgroups.Manager
		rootMount uint64
		taken     *Prestarted // the prestarted init that became this one
	)
	defer func() {
		if err == nil {
			return
		}
		if cmd != nil && cmd.Process != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
		if taken != nil {
			taken.dropCgroup()
		}
		if cg != nil {
			_ = cg.Destroy()
		}
		if rootMount != 0 {
			_ = unbindSharedRoot(rootfs, rootMount)
		}
		_ = os.RemoveAll(dir)
	}()
	if mounts == mountsShared {
		if rootMount, err = bindSharedRoot(rootfs); err != nil {
			return nil, nil, err
		}
	}

	fifoPath := filepath.Join(dir, fifoName)
	if err = unix.Mkfifo(fifoPath, 0o622); err != nil {
		return nil, nil, fmt.Errorf("exec fifo: %w", err)
	}
	// O_RDWR so that the open does not wait for a reader.
	fifo, err := os.OpenFile(fifoPath, os.O_RDWR, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("exec fifo: %w", err)
	}
	defer fifo.Close()
	console := o.ConsoleConn
	if o.ConsoleSocket != "" {
		if console, err = dialConsole(o.ConsoleSocket); err != nil {
			return nil, nil, err
		}
		defer console.Close()
	}
	if !spec.Process.Terminal {
		console = nil
	}

	cfg := &initConfig{
		Spec:         spec,
		Process:      spec.Process,
		Rootfs:       rootfs,
		NoPivot:      o.NoPivot,
		Mounts:       mounts,
		NoNewKeyring: o.NoNewKeyring,
		Console:      spec.Process.Terminal,
		CgroupPath:   cgPath,
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	var join []nsJoin
	for _, ns := range spec.Linux.Namespaces {
		switch {
		case ns.Path != "":
			join = append(join, nsJoin{ns.Type, ns.Path})
		case ns.Type == specs.MountNamespace:
			// Unshared by the init (initChild says why).
		case ns.Type == specs.CgroupNamespace:
			// Unshared by the init once it is inside its cgroup, so that
			// the namespace is rooted there.
			cfg.CgroupNS = true
		default:
			attr.Cloneflags |= nsFlag[ns.Type]
		}
	}
	cfg.NewNet = attr.Cloneflags&unix.CLONE_NEWNET != 0
	if attr.Cloneflags&unix.CLONE_NEWUSER != 0 {
		cfg.UserNS = true
		for _, m := range spec.Linux.UIDMappings {
			attr.UidMappings = append(attr.UidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		for _, m := range spec.Linux.GIDMappings {
			attr.GidMappings = append(attr.GidMappings, syscall.SysProcIDMap{ContainerID: int(m.ContainerID), HostID: int(m.HostID), Size: int(m.Size)})
		}
		attr.GidMappingsEnableSetgroups = true
		// The child still has the caller's (unmapped) ids: it must become
		// the namespace's root, or it would exec without capabilities.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0}
	}
	var syncParent *os.File
	if pre != nil && pre.fits(attr.Cloneflags, join) {
		taken = pre
		cmd, syncParent, pre = pre.cmd, pre.sync, nil
		defer syncParent.Close()
		if err = handOver(syncParent, o.Stdio, fifo, console); err != nil {
			return nil, nil, fmt.Errorf("prestarted container init: %w", err)
		}
	} else {
		if cmd, syncParent, err = r.startInit(o.Stdio, fifo, console, attr, join); err != nil {
			return nil, nil, err
		}
		defer syncParent.Close()
	}
	pid := cmd.Process.Pid

	if cg, err = cgroups.New(cgPath); err != nil {
		return nil, nil, err
	}
	if taken != nil {
		taken.takeCgroup(cgPath) // its own cgroup becomes the container's, where it can
	}
	if err = cg.Apply(pid); err != nil {
		return nil, nil, err
	}
	if taken != nil {
		taken.dropCgroup() // what was not renamed, now empty
	}
	if err = cg.Set(spec.Linux.Resources); err != nil {
		return nil, nil, err
	}
	start, _, err := procStartTime(pid)
	if err != nil {
		return nil, nil, fmt.Errorf("container init: %w", err)
	}
	rec := &record{
		ID:          id,
		Pid:         pid,
		StartTime:   start,
		Bundle:      bundle,
		Rootfs:      rootfs,
		Created:     time.Now().UTC(),
		Owner:       owner(),
		CgroupPath:  cgPath,
		Annotations: spec.Annotations,
		Spec:        spec,
		RootMount:   rootMount,
	}
	cfg.State = hookState(rec, Creating)

	var network chan error
	if o.Network != nil && cfg.NewNet {
		cfg.WaitNetwork = true
		network = make(chan error, 1)
		go func() { network <- o.Network(pid) }()
		// Let the wiring be asked for now, beside the config's sending
		// and the init's mounts, not once this goroutine waits (a
		// monitor runs on one P: it took ~1.5 ms more).
		goruntime.Gosched()
	}
	ch := newChannel(syncParent)
	if err = ch.send(message{Type: msgConfig, Config: cfg}); err != nil {
		return nil, nil, fmt.Errorf("send config to container init: %w", err)
	}
	for {
		var m message
		if m, err = ch.recv(); err != nil {
			return nil, nil, err
		}
		if m.Type == msgReady {
			break
		}
		if m.Type == msgNetwork && network != nil {
			if err = <-network; err != nil {
				return nil, nil, err
			}
			network = nil
			if err = ch.send(message{Type: msgNetDone}); err != nil {
				return nil, nil, err
			}
			continue
		}
		if m.Type != msgHooks {
			err = fmt.Errorf("container init: unexpected message %q", m.Type)
			return nil, nil, err
		}
		if h := spec.Hooks; h != nil {
			//lint:ignore SA1019 prestart is deprecated, but docker 20.10 still relies on it
			if err = runHooks("prestart", h.Prestart, cfg.State); err != nil {
				return nil, nil, err
			}
			if err = runHooks("createRuntime", h.CreateRuntime, cfg.State); err != nil {
				return nil, nil, err
			}
		}
		if err = ch.send(message{Type: msgHooksDone}); err != nil {
			return nil, nil, err
		}
	}
	if err = rec.save(dir); err != nil {
		return nil, nil, err
	}
	return &Container{rt: r, dir: dir, rec: rec}, &Process{cmd: cmd}, nil
}

// startInit starts a container's init with its files and namespaces.
func (r *Runtime) startInit(stdio [3]*os.File, fifo, console *os.File, attr *syscall.SysProcAttr, join []nsJoin) (*exec.Cmd, *os.File, error) {
	bin, release, err := r.sealedBinary()
	if err != nil {
		return nil, nil, err
	}
	defer release()
	syncParent, syncChild, err := socketPair("sync")
	if err != nil {
		return nil, nil, err
	}
	defer syncChild.Close()
	files := []*os.File{syncChild, bin, fifo}
	if console != nil {
		files = append(files, console)
	}
	cmd := childCmd("init", stdio, files)
	cmd.SysProcAttr = attr
	if err := startJoined(cmd, join); err != nil {
		syncParent.Close()
		return nil, nil, fmt.Errorf("start container init: %w", err)
	}
	return cmd, syncParent, nil
}

func owner() string {
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		return u.Username
	}
	return strconv.Itoa(os.Getuid())
}

// dialConsole connects to the console socket of the caller.
func dialConsole(path string) (*os.File, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("console socket %s: %w", path, err)
	}
	return os.NewFile(uintptr(fd), "console-socket"), nil
}
