package nsenter

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// UserNSEnv names the environment variable holding the descriptor of the
// user namespace to join at start ("_TENT_USERNS_FD=7"). It is exactly 16
// bytes long with its "=", which the assembly relies on.
const UserNSEnv = "_TENT_USERNS_FD"

// Set by Entry before the Go runtime starts.
var (
	ran    int64 // 1 once Entry ran
	result int64 // setns's return: 0, or -errno
)

// ErrNoEntry means the binary was linked without Entry as its entry point.
var ErrNoEntry = errors.New("this binary was not linked with tent's entry point (-ldflags -E=github.com/tent-project/tent/internal/nsenter.Entry): it cannot join a user namespace")

// Supported reports whether this binary starts through Entry.
func Supported() bool { return ran == 1 }

// UserNSResult reports whether joining the user namespace asked for in the
// environment worked. Without such a request it returns nil.
func UserNSResult() error {
	if os.Getenv(UserNSEnv) == "" {
		return nil
	}
	if ran != 1 {
		return ErrNoEntry
	}
	if result < 0 {
		return fmt.Errorf("join user namespace: %w", syscall.Errno(-result))
	}
	return nil
}
