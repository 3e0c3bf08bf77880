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
	filter []unix.SockFilter
	flags  []specs.LinuxSeccompFlag
	// Capability sets as masks; nil Capabilities leaves them alone.
	bounding, effective, permitted, inheritable, ambient uint64
}

// prepareProcess does everything that can fail about the process before
// the container is reported ready: limits, compiling the seccomp filter
// and capability sets, and finding the program.
func prepareProcess(p *specs.Process, spec *specs.Spec) (*prepared, error) {
	pr := &prepared{}
	if spec.Linux != nil && spec.Linux.Seccomp != nil {
		var err error
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
	if strings.Contains(file, "/") {
		if err := check(file); err != nil {
			if os.IsPermission(err) {
				return "", fmt.Errorf("exec: %q: permission denied", file)
			}
			return "", fmt.Errorf("exec: %q: stat %s: no such file or directory", file, file)
		}
		return file, nil
	}
	if path == "" {
		path = defaultPath
	}
	denied := false
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
			denied = true
		}
	}
	if denied {
		return "", fmt.Errorf("exec: %q: permission denied", file)
	}
	return "", fmt.Errorf("exec: %q: executable file not found in $PATH", file)
}

func envGet(env []string, key string) string {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v
		}
	}
	return ""
}

// finishProcess drops to the process's user, capabilities and (without
// no_new_privs) seccomp filter, and enters its working directory. All of
// it happens on the calling (locked) thread, whose credentials execve
// carries over. An init does it after reporting ready, as runc does, so
// that it overlaps the engine's own work between create and start.
func finishProcess(p *specs.Process, pr *prepared) error {
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
		return err
	}
	if err := setUser(p.User); err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return err
	}
	if c != nil {
		if err := setCaps(pr); err != nil {
			return err
		}
	}
	if p.User.Umask != nil {
		unix.Umask(int(*p.User.Umask))
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
	}
	return nil
}

// execProcess replaces this process with the program, after
// finishProcess: with no_new_privs the seccomp filter comes last, so that
// as few system calls as possible run under it.
func execProcess(p *specs.Process, pr *prepared) error {
	if p.NoNewPrivileges && pr.filter != nil {
		if err := seccomp.Install(pr.filter, pr.flags); err != nil {
			return err
		}
	}
	// No descriptor of the runtime's may reach the program.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return fmt.Errorf("close_range: %w", err)
	}
	env := p.Env
	if envGet(env, "HOME") == "" {
		env = append(env, "HOME="+homeDir(int(p.User.UID)))
	}
	if envGet(env, "PATH") == "" {
		env = append(env, "PATH="+defaultPath)
	}
	err := syscall.Exec(pr.path, p.Args, env)
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
