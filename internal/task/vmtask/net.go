package vmtask

import (
	"fmt"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/vm"
	"github.com/tent-project/tent/internal/vm/wire"
)

// mirrorNetwork joins the container's veth, which the engine wired into
// the namespace of QEMU (pid), to the VM's tap device: every frame that
// arrives on one leaves by the other (tc ingress redirects, as Kata
// Containers does), so the guest, given the veth's MAC and addresses, is
// the container on its network. It returns the guest's configuration.
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
	links, err := h.LinkList()
	if err != nil {
		return nil, err
	}
	var tap netlink.Link
	var veths []netlink.Link
	for _, l := range links {
		switch {
		case l.Attrs().Name == vm.TapName:
			tap = l
		case l.Type() == "veth":
			veths = append(veths, l)
		}
	}
	switch {
	case tap == nil:
		return nil, fmt.Errorf("the VM has no %s", vm.TapName)
	case len(veths) == 0:
		return nil, nil
	case len(veths) > 1:
		return nil, fmt.Errorf("a VM container on more than one network: %w", errdefs.ErrNotImplemented)
	}
	veth := veths[0]
	ifc := wire.Iface{MAC: veth.Attrs().HardwareAddr.String(), MTU: veth.Attrs().MTU}
	addrs, err := h.AddrList(veth, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() { // not the veth's own IPv6 link-local address
			ifc.Addrs = append(ifc.Addrs, a.IPNet.String())
		}
	}
	routes, err := h.RouteList(veth, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	for _, r := range routes {
		if r.Gw != nil && (r.Dst == nil || r.Dst.IP.IsUnspecified() && r.Dst.Mask != nil && isZero(r.Dst.Mask)) {
			if r.Gw.To4() != nil {
				ifc.Gateway = r.Gw.String()
			} else {
				ifc.Gateway6 = r.Gw.String()
			}
		}
	}
	if err := h.LinkSetMTU(tap, veth.Attrs().MTU); err != nil {
		return nil, err
	}
	if err := h.LinkSetUp(tap); err != nil {
		return nil, err
	}
	for _, pair := range [][2]netlink.Link{{veth, tap}, {tap, veth}} {
		if err := redirect(h, pair[0], pair[1]); err != nil {
			return nil, err
		}
	}
	return []wire.Iface{ifc}, nil
}

func isZero(m []byte) bool {
	for _, b := range m {
		if b != 0 {
			return false
		}
	}
	return true
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
