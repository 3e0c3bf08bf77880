//go:build linux

package agent

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/tent-project/tent/internal/nlutil"

	"github.com/tent-project/tent/internal/vm/wire"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// The guest's network: its NICs mirror the container's interfaces.

// netMu orders the host's network frames; nicsNamed: the NICs have their
// names (the driver is loaded).
var (
	netMu     sync.Mutex
	nicsNamed bool
)

// configureNetwork makes the guest's NICs what the host sent, the whole
// of the container's network: NIC i takes interface Index i's MAC,
// addresses, MTU and default routes, and a NIC no interface names is
// taken down and given back its own MAC (its network was disconnected).
// Addresses that stay are left in place, so a change to one network
// does not disturb the others' connections.
func configureNetwork(ifaces []wire.Iface) error {
	netMu.Lock()
	defer netMu.Unlock()
	if len(ifaces) == 0 && !nicsNamed {
		return nil // no network, now or before
	}
	if err := nameNICs(); err != nil {
		return err
	}
	want := make([]*wire.Iface, wire.NICs)
	for i := range ifaces {
		ifc := &ifaces[i]
		if ifc.Index < 0 || ifc.Index >= wire.NICs {
			return fmt.Errorf("interface %d of a VM with %d NICs", ifc.Index, wire.NICs)
		}
		want[ifc.Index] = ifc
	}
	var gw4, gw6 *netlink.Route
	for i, ifc := range want {
		l, err := netlink.LinkByName(nicName(i))
		if err != nil {
			return err
		}
		if ifc == nil {
			if err := resetNIC(l, i); err != nil {
				return err
			}
			continue
		}
		if err := applyIface(l, ifc); err != nil {
			return fmt.Errorf("%s: %w", nicName(i), err)
		}
		if gw := net.ParseIP(ifc.Gateway); gw != nil {
			gw4 = &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}
		}
		if gw := net.ParseIP(ifc.Gateway6); gw != nil {
			gw6 = &netlink.Route{LinkIndex: l.Attrs().Index, Gw: gw}
		}
	}
	return errors.Join(defaultRoute(netlink.FAMILY_V4, gw4), defaultRoute(netlink.FAMILY_V6, gw6))
}

func nicName(i int) string { return fmt.Sprintf("eth%d", i) }

// nameNICs loads the NICs' driver and names NIC i eth<i>, found by the
// MAC QEMU gave it (the kernel names them in the order it probes them),
// once: later their MACs are the containers'.
func nameNICs() error {
	if nicsNamed {
		return nil
	}
	if err := loadModules("net"); err != nil {
		return err
	}
	links, err := nlutil.Dump(netlink.LinkList)
	if err != nil {
		return err
	}
	nics := make([]netlink.Link, wire.NICs)
	for _, l := range links {
		for i := range nics {
			if l.Attrs().HardwareAddr.String() == wire.NICMAC(i) {
				nics[i] = l
			}
		}
	}
	for i, l := range nics {
		if l == nil {
			return fmt.Errorf("no NIC with MAC %s", wire.NICMAC(i))
		}
	}
	// Through names no NIC has, so that no rename meets a name in use.
	for pass, name := range []func(int) string{func(i int) string { return fmt.Sprintf("nic%d", i) }, nicName} {
		for i, l := range nics {
			if l.Attrs().Name == nicName(i) && pass == 0 {
				continue
			}
			if err := netlink.LinkSetName(l, name(i)); err != nil {
				return fmt.Errorf("name NIC %d %s: %w", i, name(i), err)
			}
			l.Attrs().Name = name(i)
		}
	}
	nicsNamed = true
	return nil
}

// applyIface gives NIC l ifc's MAC, MTU and addresses and brings it up.
func applyIface(l netlink.Link, ifc *wire.Iface) error {
	if mac, err := net.ParseMAC(ifc.MAC); err == nil && l.Attrs().HardwareAddr.String() != mac.String() {
		if err := netlink.LinkSetDown(l); err != nil {
			return err
		}
		if err := netlink.LinkSetHardwareAddr(l, mac); err != nil {
			return fmt.Errorf("MAC %s: %w", mac, err)
		}
	}
	if ifc.MTU > 0 && l.Attrs().MTU != ifc.MTU {
		if err := netlink.LinkSetMTU(l, ifc.MTU); err != nil {
			return fmt.Errorf("MTU %d: %w", ifc.MTU, err)
		}
	}
	have, err := globalAddrs(l)
	if err != nil {
		return err
	}
	for _, a := range have {
		if !slices.Contains(ifc.Addrs, a.IPNet.String()) {
			if err := netlink.AddrDel(l, &a); err != nil {
				return fmt.Errorf("remove address %s: %w", a.IPNet, err)
			}
		}
	}
	for _, s := range ifc.Addrs {
		if slices.ContainsFunc(have, func(a netlink.Addr) bool { return a.IPNet.String() == s }) {
			continue
		}
		addr, err := netlink.ParseAddr(s)
		if err != nil {
			return err
		}
		if addr.IP.To4() == nil {
			addr.Flags = unix.IFA_F_NODAD // the engine hands each address out once
		}
		if err := netlink.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("address %s: %w", s, err)
		}
	}
	return netlink.LinkSetUp(l)
}

// resetNIC takes NIC i, l, off its network: no addresses, down, its own
// MAC (the container's may go to another container now).
func resetNIC(l netlink.Link, i int) error {
	have, err := globalAddrs(l)
	if err != nil {
		return err
	}
	for _, a := range have {
		netlink.AddrDel(l, &a)
	}
	if err := netlink.LinkSetDown(l); err != nil {
		return err
	}
	if mac, _ := net.ParseMAC(wire.NICMAC(i)); l.Attrs().HardwareAddr.String() != mac.String() {
		return netlink.LinkSetHardwareAddr(l, mac)
	}
	return nil
}

// globalAddrs are l's addresses but its link-local ones (the kernel's).
func globalAddrs(l netlink.Link) ([]netlink.Addr, error) {
	all, err := nlutil.Dump(func() ([]netlink.Addr, error) { return netlink.AddrList(l, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, err
	}
	var out []netlink.Addr
	for _, a := range all {
		if a.IP.IsGlobalUnicast() {
			out = append(out, a)
		}
	}
	return out, nil
}

// defaultRoute makes r the default route of family, or removes it where
// r is nil (the network that had the gateway was disconnected).
func defaultRoute(family int, r *netlink.Route) error {
	if r != nil {
		if err := netlink.RouteReplace(r); err != nil {
			return fmt.Errorf("default route via %s: %w", r.Gw, err)
		}
		return nil
	}
	routes, err := nlutil.Dump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, family) })
	if err != nil {
		return err
	}
	for _, rt := range routes {
		if nlutil.IsDefaultRoute(rt) {
			netlink.RouteDel(&rt)
		}
	}
	return nil
}
