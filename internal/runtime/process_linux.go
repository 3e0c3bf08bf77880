package runtime

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/caps"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/seccomp"
	"golang.org/x/sys/unix"
)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var rlimitTypes = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE,
	"RLIMIT_NICE": unix.RLIMIT_NICE, "RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC,
	"RLIMIT_RSS": unix.RLIMIT_RSS, "RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME,
	"RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING, "RLIMIT_STACK": unix.RLIMIT_STACK,
}

// prepared is a process checked and compiled before the container is
// reported ready, so that bad input fails create or exec, not the start.
type prepared struct {
	path   string
	env    []string // with HOME and PATH
	filter []unix.SockFilter
	flags  []specs.LinuxSeccompFlag
	attrs  *procAttrs
	// Capability sets as masks; nil Capabilities leaves them alone.
	bounding, effective, permitted, inheritable, ambient uint64
}

// prepareProcess does everything that can fail about the process before
// the container is reported ready: limits, compiling the seccomp filter
// and capability sets, and finding the program.
func prepareProcess(p *specs.Process, spec *specs.Spec, exec bool) (*prepared, error) {
	pr := &prepared{}
	var err error
	if pr.attrs, err = parseProcAttrs(p, spec.Linux.Personality, exec); err != nil {
		return nil, err
	}
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		if pr.filter, err = seccomp.Compile(spec.Linux.Seccomp); err != nil {
			return nil, err
		}
		pr.flags = spec.Linux.Seccomp.Flags
	}
	if c := p.Capabilities; c != nil {
		for _, set := range []struct {
			names []string
			mask  *uint64
		}{{c.Bounding, &pr.bounding}, {c.Effective, &pr.effective}, {c.Permitted, &pr.permitted},
			{c.Inheritable, &pr.inheritable}, {c.Ambient, &pr.ambient}} {
			m, err := caps.Mask(set.names)
			if err != nil {
				return nil, err
			}
			*set.mask = m
		}
	}
	for _, rl := range p.Rlimits {
		res, ok := rlimitTypes[rl.Type]
		if !ok {
			return nil, fmt.Errorf("unknown rlimit %q", rl.Type)
		}
		// syscall.Setrlimit, so the Go runtime does not restore its own
		// RLIMIT_NOFILE on exec.
		if err := syscall.Setrlimit(res, &syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}); err != nil {
			return nil, fmt.Errorf("setrlimit %s: %w", rl.Type, err)
		}
	}
	if p.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*p.OOMScoreAdj)), 0); err != nil {
			return nil, fmt.Errorf("oom_score_adj: %w", err)
		}
	}
	if p.Cwd != "" {
		// The working directory is made if missing, as with runc.
		if err := os.MkdirAll(p.Cwd, 0o755); err != nil {
			return nil, fmt.Errorf("cwd %s: %w", p.Cwd, err)
		}
	}
	pr.env = p.Env
	if envGet(pr.env, "HOME") == "" {
		pr.env = append(pr.env, "HOME="+homeDir(int(p.User.UID)))
	}
	if envGet(pr.env, "PATH") == "" {
		pr.env = append(pr.env, "PATH="+defaultPath)
	}
	path, err := lookPath(p.Args[0], envGet(p.Env, "PATH"))
	pr.path = path
	return pr, err
}

// lookPath finds a program as execvp would, with the error texts of Go's
// os/exec (which engines read to pick exit codes 126 and 127).
func lookPath(file, path string) (string, error) {
	check := func(p string) error {
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return os.ErrPermission
		}
		return nil
	}
	denied := func() error {
		return errdefs.WithClass(fmt.Errorf("exec: %q: permission denied", file), errdefs.ErrPermission.Error())
	}
	if strings.Contains(file, "/") {
		if err := check(file); err != nil {
			if os.IsPermission(err) {
				return "", denied()
			}
			return "", errdefs.WithClass(fmt.Errorf("exec: %q: stat %s: no such file or directory", file, file), errdefs.ErrNotFound.Error())
		}
		return file, nil
	}
	if path == "" {
		path = defaultPath
	}
	deniedOne := false
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		err := check(p)
		if err == nil {
			return p, nil
		}
		if os.IsPermission(err) {
			deniedOne = true
		}
	}
	if deniedOne {
		return "", denied()
	}
	return "", errdefs.WithClass(fmt.Errorf("exec: %q: executable file not found in $PATH", file), errdefs.ErrNotFound.Error())
}

func envGet(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// finishProcess drops to the process's user, capabilities and seccomp
// filter, and enters its working directory, all on the calling (locked)
// thread, whose credentials execve carries over. It runs before the
// container is reported ready, as runc does, so that every error of the
// set-up reaches the caller of create (or exec) with its cause.
func finishProcess(p *specs.Process, pr *prepared) error {
	// No descriptor of the runtime's may reach the program. This comes
	// before any filter of the user's, which may not allow close_range.
	if err := cloexecFrom(3); err != nil {
		return err
	}
	if err := pr.attrs.apply(); err != nil {
		return err
	}
	filter, flags := pr.filter, pr.flags
	// Without no_new_privs loading a filter needs CAP_SYS_ADMIN: load it
	// while the capability is still held. With it, load it last.
	if filter != nil && !p.NoNewPrivileges {
		if err := seccomp.Install(filter, flags); err != nil {
			return err
		}
	}
	c := p.Capabilities
	if c != nil {
		for n := 0; n <= caps.Last(); n++ {
			if pr.bounding&(1<<uint(n)) == 0 {
				if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
					return fmt.Errorf("drop %s from bounding set: %w", caps.Name(n), err)
				}
			}
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("keep capabilities: %w", err)
	}
	if c != nil {
		if err := setCaps(pr); err != nil {
			return err
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
	}
	if err := applyAppArmor(p.ApparmorProfile); err != nil {
		return err
	}
	cwd := p.Cwd
	if cwd == "" {
		cwd = "/"
	}
	if err := unix.Chdir(cwd); err != nil {
		return fmt.Errorf("chdir to cwd (%q) set in config.json failed: %w", cwd, err)
	}
	// A working directory reached through a leaked descriptor would lie
	// outside the root (CVE-2024-21626); getcwd then fails or says so.
	if wd, err := unix.Getwd(); err != nil || !strings.HasPrefix(wd, "/") {
		return fmt.Errorf("working directory %q is outside the container", cwd)
	}
	if p.NoNewPrivileges {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return fmt.Errorf("no_new_privs: %w", err)
		}
		// Last, so that as few system calls as possible run under it.
		if filter != nil {
			if err := seccomp.Install(filter, flags); err != nil {
				return err
			}
		}
	}
	return nil
}

// cloexecFrom marks every descriptor from first on close-on-exec: with
// close_range(2) where the kernel has its CLOEXEC flag (5.11), else one by
// one from /proc/self/fd, else up to the descriptor limit.
func cloexecFrom(first int) error {
	err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC)
	if err == nil {
		return nil
	}
	mark := func(fd int) error {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && err != unix.EBADF {
			return fmt.Errorf("mark descriptor %d close-on-exec: %w", fd, err)
		}
		return nil
	}
	if entries, derr := os.ReadDir("/proc/self/fd"); derr == nil {
		// The directory's own descriptor is listed too: it is
		// close-on-exec already, and closed by now (EBADF).
		for _, e := range entries {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= first {
				if err := mark(fd); err != nil {
					return err
				}
			}
		}
		return nil
	}
	var rl unix.Rlimit
	if rerr := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); rerr != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	for fd := first; uint64(fd) < min(rl.Cur, 1<<20); fd++ {
		if err := mark(fd); err != nil {
			return err
		}
	}
	return nil
}

// execProcess replaces this process with the program, after
// finishProcess.
func execProcess(p *specs.Process, pr *prepared) error {
	err := syscall.Exec(pr.path, p.Args, pr.env)
	return fmt.Errorf("exec %s: %w", pr.path, err)
}

// setUser switches this thread to the process's ids, with raw syscalls:
// the Go wrappers change every thread, and only this one matters.
func setUser(u specs.User) error {
	gids := make([]uint32, len(u.AdditionalGids))
	copy(gids, u.AdditionalGids)
	var ptr unsafe.Pointer
	if len(gids) > 0 {
		ptr = unsafe.Pointer(&gids[0])
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, uintptr(len(gids)), uintptr(ptr), 0); e != 0 && e != unix.EPERM {
		return fmt.Errorf("setgroups: %w", e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(u.GID), uintptr(u.GID), uintptr(u.GID)); e != 0 {
		return fmt.Errorf("setgid %d: %w", u.GID, e)
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(u.UID), uintptr(u.UID), uintptr(u.UID)); e != 0 {
		return fmt.Errorf("setuid %d: %w", u.UID, e)
	}
	return nil
}

// setCaps sets the effective, permitted and inheritable sets and raises
// the ambient ones.
func setCaps(pr *prepared) error {
	eff, perm, inh, amb := pr.effective, pr.permitted, pr.inheritable, pr.ambient
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	data := [2]unix.CapUserData{
		{Effective: uint32(eff), Permitted: uint32(perm), Inheritable: uint32(inh)},
		{Effective: uint32(eff >> 32), Permitted: uint32(perm >> 32), Inheritable: uint32(inh >> 32)},
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capset: %w", err)
	}
	for n := 0; n <= caps.Last(); n++ {
		if amb&(1<<uint(n)) != 0 {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0); err != nil {
				return fmt.Errorf("raise ambient %s: %w", caps.Name(n), err)
			}
		}
	}
	return nil
}

// homeDir finds uid's home in the container's /etc/passwd, or "/".
func homeDir(uid int) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), ":")
		if len(parts) >= 6 && parts[2] == strconv.Itoa(uid) {
			return parts[5]
		}
	}
	return "/"
}
