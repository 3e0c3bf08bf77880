package network

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/tent-project/tent/internal/errdefs"
)

// EndpointOpts are what a container asks of a network.
type EndpointOpts struct {
	Container string
	Name      string // the container's
	Aliases   []string
	IP        netip.Addr // --ip; zero: the next free one
	IP6       netip.Addr // --ip6, on a network with IPv6; zero: the next free one
	MAC       string     // --mac-address; "": derived from the address
	Ports     []PortMapping
	Gateway   bool
	Iface     string // eth0, eth1...
	// DNS are the servers the engine's DNS forwards the container's other
	// questions to (--dns); nil: the host's.
	DNS []string
	// Restored: IP is the address a restored checkpoint's guest still
	// has, asked for again on any network (not only one with a subnet of
	// the user's, as --ip is).
	Restored bool
	// Links are the ports of the containers this one links to (--link),
	// which a network with icc off still lets it reach, as dockerd.
	Links []LinkedPort
}

// LinkedPort is an exposed port of a linked container.
type LinkedPort struct {
	Peer  string // the linked container's ID
	Proto string // tcp, udp, sctp
	Port  uint16
}

// Allocate gives a container an endpoint on a network: its address
// (leased on disk before it is used) and its host ports. Nothing is
// wired yet (Wire). On error nothing is kept.
func (m *Manager) Allocate(netRef string, o EndpointOpts) (_ *Endpoint, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(netRef)
	if err != nil {
		return nil, err
	}
	if n.Driver != DriverBridge {
		return nil, fmt.Errorf("container cannot be connected to network %s (driver %s): %w", n.Name, n.Driver, errdefs.ErrForbidden)
	}
	if _, ok := m.endpoints[n.ID][o.Container]; ok {
		return nil, fmt.Errorf("endpoint with name %s already exists in network %s: %w", o.Name, n.Name, errdefs.ErrForbidden)
	}
	ep := &Endpoint{ID: newID(), Network: n.ID, Container: o.Container, Name: o.Name, Aliases: o.Aliases,
		Iface: o.Iface, Gateway: o.Gateway && !n.Internal, HostVeth: "veth" + newID()[:7], DNS: o.DNS, Links: o.Links}
	var proxies []*portProxy
	if ep.Ports, proxies, err = m.allocatePorts(n, o.Ports); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			closeProxies(proxies)
		}
	}()
	if o.IP.IsValid() {
		if !n.UserSubnet && !o.Restored {
			return nil, fmt.Errorf("user specified IP address is supported only when connecting to networks with user configured subnets: %w", errdefs.ErrInvalidArgument)
		}
		if err := m.checkAddr(n, o.IP, n.Subnet, n.Gateway); err != nil {
			return nil, err
		}
		ep.IP = o.IP
	} else if ep.IP, err = m.nextIP(n, n.Subnet, n.IPRange, n.Gateway, m.ipNext); err != nil {
		return nil, err
	}
	ep.MAC = macFor(ep.IP).String()
	if o.MAC != "" {
		hw, err := net.ParseMAC(o.MAC)
		if err != nil || len(hw) != 6 {
			return nil, fmt.Errorf("invalid MAC address %q: %w", o.MAC, errdefs.ErrInvalidArgument)
		}
		ep.MAC = hw.String()
	}
	switch {
	case o.IP6.IsValid() && !n.IPv6():
		return nil, fmt.Errorf("invalid address %s: network %s has no IPv6 subnet: %w", o.IP6, n.Name, errdefs.ErrInvalidArgument)
	case o.IP6.IsValid():
		if err := m.checkAddr(n, o.IP6, n.Subnet6, n.Gateway6); err != nil {
			return nil, err
		}
		ep.IP6 = o.IP6
	case n.IPv6():
		// On the default bridge, as dockerd: the subnet's prefix and the
		// MAC address, where the subnet leaves room for one.
		if hw, _ := net.ParseMAC(ep.MAC); n.Name == NameBridge && n.Subnet6.Bits() <= 80 {
			b := n.Subnet6.Masked().Addr().As16()
			copy(b[10:], hw)
			if ip := netip.AddrFrom16(b); !m.leased(n.ID, ip) && ip != n.Gateway6 {
				ep.IP6 = ip
				break
			}
		}
		if ep.IP6, err = m.nextIP(n, n.Subnet6, n.IPRange6, n.Gateway6, m.ipNext6); err != nil {
			return nil, err
		}
	}
	// The lease file is written while the container is created (a file's
	// creation here costs ~2 ms); Wire waits for it, so that no address is
	// used before it is on disk. m.endpoints holds the address meanwhile.
	ep.lease = &leaseWrite{done: make(chan struct{})}
	m.endpoints[n.ID][ep.Container] = ep
	m.serveProxies(ep, proxies)
	m.writes.Add(1)
	go func(lw *leaseWrite, rec Endpoint) {
		defer m.writes.Done()
		lw.err = m.writeLease(&rec, true)
		close(lw.done)
	}(ep.lease, *ep)
	c := *ep
	return &c, nil
}

// leaseWrite is an endpoint's lease file being written.
type leaseWrite struct {
	done chan struct{}
	err  error
}

// leased waits for ep's lease file.
func (ep *Endpoint) leased() error {
	if ep.lease == nil {
		return nil
	}
	<-ep.lease.done
	return ep.lease.err
}

func (m *Manager) leasePath(ep *Endpoint) string {
	return filepath.Join(m.leaseDir(), ep.Network, ep.IP.String())
}

// writeLease records ep; create: the lease is new (O_EXCL, so that an
// address is never leased twice).
func (m *Manager) writeLease(ep *Endpoint, create bool) error {
	b, err := json.Marshal(ep)
	if err != nil {
		return err
	}
	p := m.leasePath(ep)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	if create {
		flags |= os.O_EXCL
	}
	f, err := os.OpenFile(p, flags, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("address %s is already in use: %w", ep.IP, errdefs.ErrConflict)
	}
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(p)
	}
	return err
}

// leased reports whether ip (of either family) is taken on network id;
// m.mu is held.
func (m *Manager) leased(id string, ip netip.Addr) bool {
	for _, ep := range m.endpoints[id] {
		if ep.IP == ip || ep.IP6 == ip {
			return true
		}
	}
	return false
}

// checkAddr checks an address asked for on n (--ip, --ip6) against the
// subnet of its family and the addresses in use; m.mu is held.
func (m *Manager) checkAddr(n *Network, ip netip.Addr, sub netip.Prefix, gw netip.Addr) error {
	if !sub.Contains(ip) || ip == sub.Addr() || ip.Is4() && ip == lastAddr(sub) {
		return fmt.Errorf("invalid address %s: it does not belong to any of this network's subnets (%s): %w", ip, sub, errdefs.ErrInvalidArgument)
	}
	if ip == gw || m.leased(n.ID, ip) || slices.Contains(slices.Collect(maps.Values(n.Aux)), ip) {
		return fmt.Errorf("address %s is already in use on network %s: %w", ip, n.Name, errdefs.ErrConflict)
	}
	return nil
}

// nextIP is the next free address of n's subnet sub (its range r if
// valid) after the last one handed out, kept in next (docker's serial
// allocation: a released address is not reused at once); m.mu is held.
func (m *Manager) nextIP(n *Network, sub, r netip.Prefix, gw netip.Addr, next map[string]netip.Addr) (netip.Addr, error) {
	if !r.IsValid() {
		r = sub
	}
	used := map[netip.Addr]bool{gw: true, sub.Addr(): true}
	if sub.Addr().Is4() {
		used[lastAddr(sub)] = true
	}
	for _, ep := range m.endpoints[n.ID] {
		used[ep.IP], used[ep.IP6] = true, true
	}
	for _, a := range n.Aux {
		used[a] = true
	}
	first, last := r.Masked().Addr(), lastAddr(r)
	ip := next[n.ID]
	if !r.Contains(ip) {
		ip = first
	}
	// Every address of the range once at most; past the number of used
	// ones plus one, one of those seen was free.
	tries := len(used) + 1
	if bits := r.Addr().BitLen() - r.Bits(); bits < 24 && 1<<bits < tries {
		tries = 1 << bits
	}
	for range tries {
		if !used[ip] {
			if ip == last {
				next[n.ID] = first
			} else {
				next[n.ID] = ip.Next()
			}
			return ip, nil
		}
		if ip == last {
			ip = first
		} else {
			ip = ip.Next()
		}
	}
	family := 4
	if sub.Addr().Is6() {
		family = 6
	}
	return netip.Addr{}, fmt.Errorf("no available IPv%d addresses on this network's address pools: %s (%s): %w", family, n.Name, n.ID, errdefs.ErrUnavailable)
}

// Wire plugs an allocated endpoint into the network namespace of pid:
// a veth pair with its container end there (ep.Iface, ep.IP, ep.MAC,
// and the default route if ep.Gateway), then its published ports.
func (m *Manager) Wire(ep *Endpoint, pid int) error {
	m.mu.Lock()
	n, ok := m.nets[ep.Network]
	var nc Network
	if ok {
		nc = *n
	}
	m.mu.Unlock()
	if !ok {
		return fmt.Errorf("network %s not found: %w", ep.Network, errdefs.ErrNotFound)
	}
	if err := ep.leased(); err != nil {
		return fmt.Errorf("lease %s: %w", ep.IP, err)
	}
	// Its rules first: with icc off, its port must be in the set of
	// ports that do not talk before it joins the bridge.
	if len(ep.Ports) > 0 || nc.NoICC {
		if err := m.syncRules(); err != nil {
			return err
		}
	}
	if err := wire(&nc, ep, pid); err != nil {
		return fmt.Errorf("failed to set up container networking: %w", err)
	}
	return nil
}

// Release ends an endpoint of a container that has stopped (or was
// Unwired): its ports' rules and its lease.
func (m *Manager) Release(containerID, netID string) {
	m.mu.Lock()
	ep := m.endpoints[netID][containerID]
	m.mu.Unlock()
	if ep != nil {
		m.release(ep, true)
	}
}

// ReleaseAll releases every endpoint of a container.
func (m *Manager) ReleaseAll(containerID string) {
	for id := range m.ContainerEndpoints(containerID) {
		m.Release(containerID, id)
	}
}

func (m *Manager) release(ep *Endpoint, sync bool) {
	m.mu.Lock()
	if eps := m.endpoints[ep.Network]; eps != nil && eps[ep.Container] == ep {
		delete(eps, ep.Container)
		m.closeProxiesOf(ep)
	}
	m.mu.Unlock()
	if (len(ep.Ports) > 0 || m.noICC(ep.Network)) && sync {
		if err := m.syncRules(); err != nil {
			m.log.Warn("remove port rules", "container", ep.Container, "err", err)
		}
	}
	ep.leased() // a release right after Allocate: the file is there to remove
	// The host end of the veth goes with the container's namespace, as
	// the kernel tears that down (deleting it here took 30 ms: a veth's
	// unregistration waits for an RCU grace period).
	os.Remove(m.leasePath(ep))
}

// Unwire takes an endpoint out of a running container's namespace (a
// disconnect); Release then frees it.
func (m *Manager) Unwire(ep *Endpoint, pid int) error { return unwire(ep, pid) }

// MoveGateway makes the endpoint of container on network netID ("": on
// none) the one its default routes go through, in the namespace of pid:
// the routes of the endpoint that had them are removed first. The
// engine calls it when a running container is connected or
// disconnected (dockerd's gateway is the endpoint whose network's name
// sorts first).
func (m *Manager) MoveGateway(container, netID string, pid int) error {
	m.mu.Lock()
	var from, to *Endpoint
	var toNet Network
	for id, eps := range m.endpoints {
		if ep := eps[container]; ep != nil {
			if ep.Gateway && id != netID {
				from = ep
			}
			if id == netID && !ep.Gateway && m.nets[id] != nil {
				to, toNet = ep, *m.nets[id]
			}
		}
	}
	m.mu.Unlock()
	if from != nil {
		if err := setGateway(nil, from, pid); err != nil {
			return err
		}
		m.setGatewayFlag(from, false)
	}
	if to != nil {
		if err := setGateway(&toNet, to, pid); err != nil {
			return err
		}
		m.setGatewayFlag(to, true)
	}
	return nil
}

// setGatewayFlag records ep.Gateway as on, in its lease too.
func (m *Manager) setGatewayFlag(ep *Endpoint, on bool) {
	m.mu.Lock()
	ep.Gateway = on
	c := *ep
	m.mu.Unlock()
	if err := m.writeLease(&c, false); err != nil {
		m.log.Warn("record the gateway", "container", ep.Container, "err", err)
	}
}

// noICC reports whether network id has icc off.
func (m *Manager) noICC(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.nets[id]
	return n != nil && n.NoICC
}
