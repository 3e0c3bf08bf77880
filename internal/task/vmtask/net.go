package vmtask

import (
	"fmt"
	"slices"
	"strconv"

	"github.com/tent-project/tent/internal/nlutil"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/vm"
	"github.com/tent-project/tent/internal/vm/wire"
)

// mirrorNetwork joins each of the container's veths, which the engine
// wired into the namespace of QEMU (pid) as eth<i>, to the VM's tap
// device i: every frame that arrives on one leaves by the other (tc
// ingress redirects, as Kata Containers does), so the guest's NIC i,
// given the veth's MAC and addresses, is the container on that network.
// A tap whose veth is gone (its network disconnected) loses its
// redirect; pairs made before are left as they are. It returns the
// guest's whole network.
func mirrorNetwork(pid int) ([]wire.Iface, error) {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return nil, fmt.Errorf("the VM's network namespace: %w", err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	links, err := nlutil.Dump(h.LinkList)
	if err != nil {
		return nil, err
	}
	taps := make([]netlink.Link, wire.NICs)
	veths := make([]netlink.Link, wire.NICs)
	for _, l := range links {
		name := l.Attrs().Name
		for i := range wire.NICs {
			switch {
			case name == vm.TapName(i):
				taps[i] = l
			case name == "eth"+strconv.Itoa(i) && l.Type() == "veth":
				veths[i] = l
			}
		}
		if l.Type() == "veth" && !slices.Contains(veths, l) {
			return nil, fmt.Errorf("a VM container on more than %d networks (interface %s): %w", wire.NICs, name, errdefs.ErrNotImplemented)
		}
	}
	var ifaces []wire.Iface
	for i, veth := range veths {
		tap := taps[i]
		if tap == nil {
			return nil, fmt.Errorf("the VM has no %s", vm.TapName(i))
		}
		paired, err := hasIngress(h, veth)
		if err != nil {
			return nil, err
		}
		if veth == nil || !paired {
			// The tap's redirect, if any, went to a veth that is gone.
			if err := dropIngress(h, tap); err != nil {
				return nil, err
			}
		}
		if veth == nil {
			continue
		}
		if !paired {
			if err := pair(h, veth, tap); err != nil {
				return nil, err
			}
		}
		ifc, err := ifaceOf(h, veth)
		if err != nil {
			return nil, err
		}
		ifc.Index = i
		ifaces = append(ifaces, ifc)
	}
	return ifaces, nil
}

// ifaceOf is the guest's configuration of the NIC that mirrors veth.
func ifaceOf(h *netlink.Handle, veth netlink.Link) (wire.Iface, error) {
	ifc := wire.Iface{MAC: veth.Attrs().HardwareAddr.String(), MTU: veth.Attrs().MTU}
	addrs, err := nlutil.Dump(func() ([]netlink.Addr, error) { return h.AddrList(veth, netlink.FAMILY_ALL) })
	if err != nil {
		return ifc, err
	}
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() { // not the veth's own IPv6 link-local address
			ifc.Addrs = append(ifc.Addrs, a.IPNet.String())
		}
	}
	routes, err := nlutil.Dump(func() ([]netlink.Route, error) { return h.RouteList(veth, netlink.FAMILY_ALL) })
	if err != nil {
		return ifc, err
	}
	for _, r := range routes {
		if nlutil.IsDefaultRoute(r) {
			if r.Gw.To4() != nil {
				ifc.Gateway = r.Gw.String()
			} else {
				ifc.Gateway6 = r.Gw.String()
			}
		}
	}
	return ifc, nil
}

// pair mirrors veth and tap both ways, tap taking veth's MTU.
func pair(h *netlink.Handle, veth, tap netlink.Link) error {
	if err := h.LinkSetMTU(tap, veth.Attrs().MTU); err != nil {
		return err
	}
	if err := h.LinkSetUp(tap); err != nil {
		return err
	}
	for _, p := range [][2]netlink.Link{{veth, tap}, {tap, veth}} {
		if err := redirect(h, p[0], p[1]); err != nil {
			return err
		}
	}
	return nil
}

// hasIngress reports whether l (nil: none) has an ingress qdisc: a veth
// with one is paired already.
func hasIngress(h *netlink.Handle, l netlink.Link) (bool, error) {
	if l == nil {
		return false, nil
	}
	qs, err := h.QdiscList(l)
	if err != nil {
		return false, err
	}
	return slices.ContainsFunc(qs, func(q netlink.Qdisc) bool { return q.Type() == "ingress" }), nil
}

// dropIngress deletes l's ingress qdisc and with it its redirect.
func dropIngress(h *netlink.Handle, l netlink.Link) error {
	if on, err := hasIngress(h, l); err != nil || !on {
		return err
	}
	err := h.QdiscDel(&netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: l.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}})
	if err != nil {
		return fmt.Errorf("drop the redirect of %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// redirect sends every frame that arrives on from out of to.
func redirect(h *netlink.Handle, from, to netlink.Link) error {
	ingress := &netlink.Ingress{QdiscAttrs: netlink.QdiscAttrs{LinkIndex: from.Attrs().Index,
		Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_INGRESS}}
	if err := h.QdiscAdd(ingress); err != nil {
		return fmt.Errorf("ingress qdisc on %s: %w", from.Attrs().Name, err)
	}
	filter := &netlink.U32{
		FilterAttrs: netlink.FilterAttrs{LinkIndex: from.Attrs().Index, Parent: netlink.MakeHandle(0xffff, 0),
			Priority: 1, Protocol: unix.ETH_P_ALL},
		Actions: []netlink.Action{&netlink.MirredAction{ActionAttrs: netlink.ActionAttrs{Action: netlink.TC_ACT_STOLEN},
			MirredAction: netlink.TCA_EGRESS_REDIR, Ifindex: to.Attrs().Index}},
	}
	if err := h.FilterAdd(filter); err != nil {
		return fmt.Errorf("redirect %s to %s: %w", from.Attrs().Name, to.Attrs().Name, err)
	}
	return nil
}
