package nlutil

import (
	"errors"
	"net"
	"testing"

	"github.com/vishvananda/netlink"
)

func TestDumpRetriesAnInterruptedDump(t *testing.T) {
	calls := 0
	got, err := Dump(func() (int, error) {
		calls++
		if calls < 3 {
			return -1, netlink.ErrDumpInterrupted
		}
		return 42, nil
	})
	if got != 42 || err != nil || calls != 3 {
		t.Errorf("got %d, %v after %d calls; want 42, nil after 3", got, err, calls)
	}
	other := errors.New("no such device")
	calls = 0
	if _, err := Dump(func() (int, error) { calls++; return 0, other }); err != other || calls != 1 {
		t.Errorf("another error: %v after %d calls, want it at once", err, calls)
	}
	calls = 0
	if _, err := Dump(func() (int, error) { calls++; return 0, netlink.ErrDumpInterrupted }); !errors.Is(err, netlink.ErrDumpInterrupted) || calls != 20 {
		t.Errorf("always interrupted: %v after %d calls, want it after 20", err, calls)
	}
}

func TestIsDefaultRoute(t *testing.T) {
	gw := net.ParseIP("10.0.0.1")
	_, all4, _ := net.ParseCIDR("0.0.0.0/0")
	_, all6, _ := net.ParseCIDR("::/0")
	_, subnet, _ := net.ParseCIDR("10.0.0.0/24")
	for _, c := range []struct {
		r    netlink.Route
		want bool
	}{
		{netlink.Route{Gw: gw}, true},
		{netlink.Route{Gw: gw, Dst: all4}, true},
		{netlink.Route{Gw: net.ParseIP("fd00::1"), Dst: all6}, true},
		{netlink.Route{Gw: gw, Dst: subnet}, false},
		{netlink.Route{Dst: subnet}, false},
		{netlink.Route{}, false}, // no gateway: not a way out
	} {
		if got := IsDefaultRoute(c.r); got != c.want {
			t.Errorf("%+v: got %v, want %v", c.r, got, c.want)
		}
	}
}
