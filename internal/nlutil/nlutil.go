// Package nlutil is what the engine's netlink code shares: the network
// driver, the VM backend and the VM's agent. It imports netlink alone,
// so that the agent stays small.
package nlutil

import (
	"errors"

	"github.com/vishvananda/netlink"
)

// Dump runs a netlink dump (a list of links, addresses, routes) again
// while a change made during it interrupted it (netlink's
// ErrDumpInterrupted, "results may be incomplete or inconsistent"): an
// interface that comes up gets its IPv6 link-local address from the
// kernel while its addresses are listed, a container's start adds a
// route while the host's are.
func Dump[T any](list func() (T, error)) (T, error) {
	for try := 1; ; try++ {
		v, err := list()
		if !errors.Is(err, netlink.ErrDumpInterrupted) || try == 20 {
			return v, err
		}
	}
}

// IsDefaultRoute reports whether r is a default route: through a
// gateway, to everywhere (no destination, or a /0).
func IsDefaultRoute(r netlink.Route) bool {
	if r.Gw == nil {
		return false
	}
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}
