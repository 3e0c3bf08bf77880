package network

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/tent-project/tent/internal/nlutil"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

func ipNet(ip netip.Addr, bits int) *net.IPNet {
	return &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(bits, ip.BitLen())}
}

// addr6 is an IPv6 address without duplicate address detection (the
// engine hands each out once; DAD would hold it "tentative", unusable,
// for a second or more).
func addr6(ip netip.Addr, bits int) *netlink.Addr {
	return &netlink.Addr{IPNet: ipNet(ip, bits), Flags: unix.IFA_F_NODAD}
}

func sysctl(path, value string) error {
	return os.WriteFile("/proc/sys/"+path, []byte(value), 0o644)
}

var forwarding, forwarding6 sync.Once

// ensureBridge makes n's bridge if it is missing and gives it the
// gateway address (and the IPv6 one); it is up, with route_localnet
// (published ports on 127.0.0.1 are DNATed to it), and the host forwards
// IPv4 (and IPv6, once a network has it, as dockerd: note that a host
// that forwards IPv6 takes no router advertisements on interfaces with
// accept_ra 1).
func ensureBridge(n *Network) error {
	var ferr error
	forwarding.Do(func() { ferr = sysctl("net/ipv4/ip_forward", "1") })
	if ferr != nil {
		return fmt.Errorf("enable IPv4 forwarding: %w", ferr)
	}
	if n.IPv6() {
		forwarding6.Do(func() { ferr = sysctl("net/ipv6/conf/all/forwarding", "1") })
		if ferr != nil {
			return fmt.Errorf("enable IPv6 forwarding (is IPv6 disabled on this host?): %w", ferr)
		}
	}
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		attrs := netlink.NewLinkAttrs()
		attrs.Name = n.Bridge
		if n.MTU > 0 {
			attrs.MTU = n.MTU
		}
		br := &netlink.Bridge{LinkAttrs: attrs}
		if err := netlink.LinkAdd(br); err != nil {
			return fmt.Errorf("create bridge %s: %w", n.Bridge, err)
		}
		if link, err = netlink.LinkByName(n.Bridge); err != nil {
			return err
		}
		// A bridge without an address of its own takes its ports' lowest
		// one, which changes as containers come and go: their ARP entry
		// for the gateway goes stale and DNS and routing to it stall.
		if err := netlink.LinkSetHardwareAddr(link, randomMAC()); err != nil {
			return fmt.Errorf("MAC of %s: %w", n.Bridge, err)
		}
	} else if _, ok := link.(*netlink.Bridge); !ok {
		return fmt.Errorf("%s exists and is not a bridge (%s)", n.Bridge, link.Type())
	}
	addr := &netlink.Addr{IPNet: ipNet(n.Gateway, n.Subnet.Bits())}
	if err := netlink.AddrReplace(link, addr); err != nil {
		return fmt.Errorf("address %s on %s: %w", n.Gateway, n.Bridge, err)
	}
	if err := sysctl("net/ipv4/conf/"+n.Bridge+"/route_localnet", "1"); err != nil {
		return err
	}
	if n.IPv6() {
		// No duplicate address detection on the bridge either: its
		// link-local address would stay tentative for a second or two
		// after its creation, in which the host's neighbour solicitations
		// to the containers went unanswered (measured: a container of
		// another network could not reach one of a network just made).
		for _, kv := range [][2]string{{"disable_ipv6", "0"}, {"accept_dad", "0"}} {
			if err := sysctl("net/ipv6/conf/"+n.Bridge+"/"+kv[0], kv[1]); err != nil {
				return fmt.Errorf("IPv6 on %s: %w", n.Bridge, err)
			}
		}
		if err := netlink.AddrReplace(link, addr6(n.Gateway6, n.Subnet6.Bits())); err != nil {
			return fmt.Errorf("address %s on %s: %w", n.Gateway6, n.Bridge, err)
		}
	}
	return netlink.LinkSetUp(link)
}

// A Linux bridge takes at most 1023 ports (BR_MAX_PORTS), where dockerd
// stops. A network outgrows that with overflow bridges: each is a port
// of the network's bridge through a veth pair, one L2 segment with it;
// only the network's bridge has an address, so routing and the filter
// rules see its name alone.
var (
	portsPerBridge = 1000 // a margin for concurrent wiring
	overflowMu     sync.Mutex
)

func overflowName(n *Network, k int) string { return fmt.Sprintf("tnx%s%d", n.ID[:8], k) }
func uplinkName(n *Network, k int) string   { return fmt.Sprintf("tnl%s%da", n.ID[:8], k) }
func uplinkPeer(n *Network, k int) string   { return fmt.Sprintf("tnl%s%db", n.ID[:8], k) }

// uplinkNames are both ends of each of n's overflow bridges' uplinks.
func uplinkNames(n *Network) []string {
	var out []string
	for k := 1; ; k++ {
		if _, err := netlink.LinkByName(overflowName(n, k)); err != nil {
			return out
		}
		out = append(out, uplinkName(n, k), uplinkPeer(n, k))
	}
}

// bridgeFor is the bridge a new endpoint of n goes on: the network's,
// or the first overflow bridge with room (made if none has).
func bridgeFor(n *Network) (netlink.Link, error) {
	ports := func(name string) int {
		ents, _ := os.ReadDir("/sys/class/net/" + name + "/brif")
		return len(ents)
	}
	br, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return nil, fmt.Errorf("bridge %s: %w", n.Bridge, err)
	}
	if ports(n.Bridge) < portsPerBridge {
		return br, nil
	}
	overflowMu.Lock()
	defer overflowMu.Unlock()
	for k := 1; ; k++ {
		name := overflowName(n, k)
		if l, err := netlink.LinkByName(name); err == nil {
			if ports(name) < portsPerBridge {
				return l, nil
			}
			continue
		}
		raiseKernelLimits((k + 1) * portsPerBridge)
		return addOverflow(n, br, k)
	}
}

// kernelLimits are the host's settings that a segment of ports bridge
// ports needs, by /proc/sys path: a broadcast (an ARP request) is one
// packet per port queued at once on one CPU's backlog, whose default
// (1,000) drops the rest, so the ports after the first thousand never
// hear it; and the neighbour table, one for all network namespaces
// (1,024 entries by default), holds an entry in each container for each
// peer it talks to, and refuses new ones when full ("neighbor table
// overflow"). Measured: one namespace pinging 1,020 others on one
// bridge reached 832 with the defaults, 1,000 with the neighbour table
// raised, all with the backlog raised too.
func kernelLimits(ports int) map[string]int {
	return map[string]int{
		"net/core/netdev_max_backlog":       2 * ports,
		"net/ipv4/neigh/default/gc_thresh2": 2 * ports,
		"net/ipv4/neigh/default/gc_thresh3": 4 * ports,
	}
}

// raiseKernelLimits raises the host's settings to what ports bridge
// ports need (never lowers them), as a network outgrows a bridge.
func raiseKernelLimits(ports int) {
	for path, want := range kernelLimits(ports) {
		b, err := os.ReadFile("/proc/sys/" + path)
		if err != nil {
			continue // a kernel without it
		}
		if cur, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && cur >= want {
			continue
		}
		if err := sysctl(path, strconv.Itoa(want)); err != nil {
			slog.Warn("raise a kernel limit for a large network", "setting", path, "to", want, "err", err)
		} else {
			slog.Info("raised a kernel limit for a large network", "setting", path, "to", want)
		}
	}
}

func addOverflow(n *Network, br netlink.Link, k int) (netlink.Link, error) {
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MTU = overflowName(n, k), br.Attrs().MTU
	if err := netlink.LinkAdd(&netlink.Bridge{LinkAttrs: attrs}); err != nil {
		return nil, fmt.Errorf("create overflow bridge %s: %w", attrs.Name, err)
	}
	ob, err := netlink.LinkByName(attrs.Name)
	if err == nil {
		err = netlink.LinkSetHardwareAddr(ob, randomMAC())
	}
	if err == nil {
		up := netlink.NewLinkAttrs()
		up.Name, up.MTU, up.MasterIndex = uplinkName(n, k), br.Attrs().MTU, br.Attrs().Index
		peer := uplinkPeer(n, k)
		err = netlink.LinkAdd(&netlink.Veth{LinkAttrs: up, PeerName: peer, PeerMTU: uint32(br.Attrs().MTU)})
		var pl netlink.Link
		if err == nil {
			pl, err = netlink.LinkByName(peer)
		}
		if err == nil {
			err = netlink.LinkSetMaster(pl, ob)
		}
		for _, name := range []string{up.Name, peer, attrs.Name} {
			if err == nil {
				var l netlink.Link
				if l, err = netlink.LinkByName(name); err == nil {
					err = netlink.LinkSetUp(l)
				}
			}
		}
	}
	if err != nil {
		deleteLink(uplinkName(n, k))
		deleteLink(attrs.Name)
		return nil, fmt.Errorf("overflow bridge %s: %w", attrs.Name, err)
	}
	return ob, nil
}

// deleteBridge removes a network's bridge and its overflow bridges.
// dropAddrs takes n's gateway addresses off its Linux bridge (the
// default bridge, before it is given others).
func dropAddrs(n *Network) {
	link, err := netlink.LinkByName(n.Bridge)
	if err != nil {
		return
	}
	if n.Gateway.IsValid() {
		netlink.AddrDel(link, &netlink.Addr{IPNet: ipNet(n.Gateway, n.Subnet.Bits())})
	}
	if n.Gateway6.IsValid() {
		netlink.AddrDel(link, &netlink.Addr{IPNet: ipNet(n.Gateway6, n.Subnet6.Bits())})
	}
}

func deleteBridge(n *Network) error {
	for k := 1; ; k++ {
		if _, err := netlink.LinkByName(overflowName(n, k)); err != nil {
			break
		}
		deleteLink(uplinkName(n, k))
		deleteLink(overflowName(n, k))
	}
	return deleteLink(n.Bridge)
}

func deleteLink(name string) error {
	if name == "" {
		return nil
	}
	link, err := netlink.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return err
	}
	return netlink.LinkDel(link)
}

// hostRoutes are the IPv4 destinations the host routes, and its own
// addresses' subnets, which a new network's subnet must not overlap.
func hostRoutes() []netip.Prefix {
	var out []netip.Prefix
	routes, _ := nlutil.Dump(func() ([]netlink.Route, error) { return netlink.RouteList(nil, netlink.FAMILY_V4) })
	for _, r := range routes {
		if r.Dst == nil {
			continue
		}
		if p, ok := prefixOf(r.Dst); ok {
			out = append(out, p)
		}
	}
	addrs, _ := nlutil.Dump(func() ([]netlink.Addr, error) { return netlink.AddrList(nil, netlink.FAMILY_V4) })
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			out = append(out, p.Masked())
		}
	}
	return out
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), true
}

// wire makes ep's veth pair with its container end in pid's network
// namespace, created there directly, and configures that end from
// inside.
func wire(n *Network, ep *Endpoint, pid int) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return fmt.Errorf("network namespace of %d: %w", pid, err)
	}
	defer ns.Close()
	br, err := bridgeFor(n)
	if err != nil {
		return err
	}
	mac, err := net.ParseMAC(ep.MAC)
	if err != nil {
		return err
	}
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.MasterIndex, attrs.Flags = ep.HostVeth, br.Attrs().Index, net.FlagUp
	mtu := br.Attrs().MTU
	attrs.MTU = mtu
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: ep.Iface, PeerHardwareAddr: mac, PeerNamespace: netlink.NsFd(int(ns)), PeerMTU: uint32(mtu)}
	if err := netlink.LinkAdd(veth); err != nil {
		return fmt.Errorf("create veth %s: %w", ep.HostVeth, err)
	}
	ok := false
	defer func() {
		if !ok {
			netlink.LinkDel(veth)
		}
	}()
	h, in, err := linkIn(ns, ep.Iface)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := h.AddrAdd(in, &netlink.Addr{IPNet: ipNet(ep.IP, n.Subnet.Bits())}); err != nil {
		return fmt.Errorf("address %s: %w", ep.IP, err)
	}
	if ep.IP6.IsValid() {
		if err := enableIPv6(ns, ep.Iface); err != nil {
			return err
		}
		if err := h.AddrAdd(in, addr6(ep.IP6, n.Subnet6.Bits())); err != nil {
			return fmt.Errorf("address %s: %w", ep.IP6, err)
		}
	}
	if err := h.LinkSetUp(in); err != nil {
		return err
	}
	if ep.Gateway {
		if err := defaultRoutes(h, in, n, ep); err != nil {
			return err
		}
	}
	ok = true
	return nil
}

// defaultRoutes makes in, ep's interface, the way of the namespace's
// default routes through n's gateways (n nil: takes them away from it).
func defaultRoutes(h *netlink.Handle, in netlink.Link, n *Network, ep *Endpoint) error {
	if n == nil {
		routes, err := nlutil.Dump(func() ([]netlink.Route, error) { return h.RouteList(in, netlink.FAMILY_ALL) })
		if err != nil {
			return err
		}
		for _, r := range routes {
			if nlutil.IsDefaultRoute(r) {
				if err := h.RouteDel(&r); err != nil && !errors.Is(err, unix.ESRCH) {
					return fmt.Errorf("remove the default route via %s: %w", r.Gw, err)
				}
			}
		}
		return nil
	}
	gws := []netip.Addr{n.Gateway}
	if ep.IP6.IsValid() {
		gws = append(gws, n.Gateway6)
	}
	for _, gw := range gws {
		if err := h.RouteReplace(&netlink.Route{LinkIndex: in.Attrs().Index, Gw: gw.AsSlice()}); err != nil {
			return fmt.Errorf("default route via %s: %w", gw, err)
		}
	}
	return nil
}

// setGateway gives ep's interface in pid's namespace the default routes
// through n's gateways, or (n nil) takes them away.
func setGateway(n *Network, ep *Endpoint, pid int) error {
	return withLink(ep, pid, func(h *netlink.Handle, in netlink.Link) error { return defaultRoutes(h, in, n, ep) })
}

// unwire deletes ep's interface in pid's namespace (its host end goes
// with it).
func unwire(ep *Endpoint, pid int) error {
	return withLink(ep, pid, func(h *netlink.Handle, in netlink.Link) error { return h.LinkDel(in) })
}

// withLink calls fn with a netlink handle in pid's network namespace and
// ep's interface there.
func withLink(ep *Endpoint, pid int, fn func(h *netlink.Handle, in netlink.Link) error) error {
	ns, err := netns.GetFromPid(pid)
	if err != nil {
		return err
	}
	defer ns.Close()
	h, in, err := linkIn(ns, ep.Iface)
	if err != nil {
		return err
	}
	defer h.Close()
	return fn(h, in)
}

// linkIn is a netlink handle in namespace ns and the interface name
// there; the caller closes the handle.
func linkIn(ns netns.NsHandle, name string) (*netlink.Handle, netlink.Link, error) {
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, nil, err
	}
	l, err := h.LinkByName(name)
	if err != nil {
		h.Close()
		return nil, nil, err
	}
	return h, l, nil
}

// enableIPv6 turns IPv6 on for iface and lo in namespace ns, where a
// container's spec turns it off (dockerd's default: spec.sysctls).
func enableIPv6(ns netns.NsHandle, iface string) error {
	return inNamespace(ns, func() error {
		for _, dev := range []string{"lo", iface} {
			if err := sysctl("net/ipv6/conf/"+dev+"/disable_ipv6", "0"); err != nil {
				return fmt.Errorf("IPv6 on %s: %w", dev, err)
			}
		}
		return nil
	})
}

// inNamespace runs fn on a thread in network namespace ns (/proc/sys/net
// is the namespace of the thread that opens it).
func inNamespace(ns netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	origin, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer origin.Close()
	if err := netns.Set(ns); err != nil {
		runtime.UnlockOSThread()
		return err
	}
	ferr := fn()
	if err := netns.Set(origin); err != nil {
		return errors.Join(ferr, err) // the thread stays locked: it goes with the goroutine
	}
	runtime.UnlockOSThread()
	return ferr
}

// randomMAC is a random unicast, locally administered address.
func randomMAC() net.HardwareAddr {
	b := make([]byte, 6)
	randRead(b)
	b[0] = b[0]&0xfe | 0x02
	return b
}
