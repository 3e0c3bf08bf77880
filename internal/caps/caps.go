package caps

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// names lists every capability the kernel headers define, indexed by number.
var names = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
}

// All returns every capability name known to tent, in kernel order.
func All() []string { return append([]string(nil), names...) }

// Bounding returns the capabilities of this process's bounding set: all
// that a process it starts can have. A privileged container gets these
// rather than All, which fails to start on a host that withholds one
// (runc's "unable to apply caps": dockerd asks for them all).
func Bounding() []string {
	var out []string
	for i, n := range names {
		if i > Last() {
			break
		}
		if r, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(i), 0, 0, 0); err == nil && r == 1 {
			out = append(out, n)
		}
	}
	return out
}

// Parse returns the number of a capability. It accepts "CAP_NET_ADMIN",
// "NET_ADMIN" and any letter case, as docker does.
func Parse(name string) (int, error) {
	n := strings.ToUpper(strings.TrimSpace(name))
	if !strings.HasPrefix(n, "CAP_") {
		n = "CAP_" + n
	}
	for i, c := range names {
		if c == n {
			return i, nil
		}
	}
	return 0, fmt.Errorf("unknown capability %q", name)
}

// Name returns the canonical name of capability number n.
func Name(n int) string {
	if n >= 0 && n < len(names) {
		return names[n]
	}
	return "CAP_" + strconv.Itoa(n)
}

var (
	lastOnce sync.Once
	lastCap  int
)

// Last returns the highest capability number the running kernel supports.
func Last() int {
	lastOnce.Do(func() {
		lastCap = len(names) - 1
		b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
		if err != nil {
			return
		}
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			lastCap = n
		}
	})
	return lastCap
}

// Mask turns a list of names into a bit mask (bit n set for capability n).
// Capabilities the kernel does not know are dropped silently, as runc does,
// so a spec written for a newer kernel still runs on an older one.
func Mask(list []string) (uint64, error) {
	var m uint64
	for _, name := range list {
		n, err := Parse(name)
		if err != nil {
			return 0, err
		}
		if n <= Last() {
			m |= 1 << uint(n)
		}
	}
	return m, nil
}
