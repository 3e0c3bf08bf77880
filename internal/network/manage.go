package network

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/tent-project/tent/internal/errdefs"
)

var randRead = rand.Read

// CreateOpts are a new network's settings (POST /networks/create).
type CreateOpts struct {
	Name       string
	Driver     string
	Internal   bool
	Attachable bool
	IPv6       bool
	// Subnet, IPRange and Gateway: one IPAM config, each optional.
	Subnet  string
	IPRange string
	Gateway string
	// Subnet6, IPRange6 and Gateway6: the IPv6 config, which IPv6
	// needs (a subnet at least) and which needs IPv6.
	Subnet6  string
	IPRange6 string
	Gateway6 string
	// Aux are addresses of the subnets kept from containers
	// (--aux-address), by name.
	Aux     map[string]string
	Options map[string]string
	Labels  map[string]string
}

var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// Create makes a network: its record, then its bridge and rules. On any
// error nothing of it is left.
func (m *Manager) Create(o CreateOpts) (*Network, error) {
	if o.Driver == "" {
		o.Driver = DriverBridge
	}
	switch {
	case !validName.MatchString(o.Name):
		return nil, fmt.Errorf("invalid network name %q: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", o.Name, errdefs.ErrInvalidArgument)
	case o.Name == NameBridge || o.Name == NameHost || o.Name == NameNone:
		return nil, fmt.Errorf("%s is a pre-defined network and cannot be created: %w", o.Name, errdefs.ErrForbidden)
	case o.Driver == DriverHost || o.Driver == DriverNull:
		return nil, fmt.Errorf("only one instance of %q network is allowed: %w", o.Driver, errdefs.ErrForbidden)
	case o.Driver != DriverBridge:
		return nil, fmt.Errorf("could not find plugin %s in v1 plugin registry: plugin not found: %w", o.Driver, errdefs.ErrNotFound)
	}
	n := &Network{ID: newID(), Name: o.Name, Driver: o.Driver, Created: time.Now().UTC(), Internal: o.Internal,
		Attachable: o.Attachable, Options: o.Options, Labels: o.Labels, MTU: m.cfg.MTU}
	n.Bridge = "tent-" + n.ID[:10]
	for k, v := range o.Options {
		switch k {
		case OptBridgeName:
			if v == "" || len(v) > 15 || strings.ContainsAny(v, "/ \t\n") {
				return nil, fmt.Errorf("invalid bridge name %q: %w", v, errdefs.ErrInvalidArgument)
			}
			n.Bridge = v
		case OptMTU:
			mtu, err := strconv.Atoi(v)
			if err != nil || mtu < 68 || mtu > 65535 {
				return nil, fmt.Errorf("invalid MTU %q: %w", v, errdefs.ErrInvalidArgument)
			}
			n.MTU = mtu
		case OptICC, OptMasquerade:
			on, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("failed to parse %s value: %s (%v): %w", k, v, err, errdefs.ErrInvalidArgument)
			}
			if k == OptICC {
				n.NoICC = !on
			} else {
				n.NoMasquerade = !on
			}
		case OptHostBinding:
			ip, err := netip.ParseAddr(v)
			if err != nil {
				return nil, fmt.Errorf("failed to parse %s value: %s (nil ip): %w", k, v, errdefs.ErrInvalidArgument)
			}
			n.HostBinding = ip.Unmap()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, other := range m.nets {
		if other.Name == n.Name && !other.Removing {
			return nil, fmt.Errorf("network with name %s already exists: %w", n.Name, errdefs.ErrConflict)
		}
		if other.Bridge == n.Bridge && n.Bridge != "" {
			return nil, fmt.Errorf("bridge name %s is used by network %s: %w", n.Bridge, other.Name, errdefs.ErrConflict)
		}
	}
	if err := m.ipamConfig(n, o); err != nil {
		return nil, err
	}
	if err := auxAddresses(n, o.Aux); err != nil {
		return nil, err
	}
	if err := m.save(n); err != nil {
		return nil, err
	}
	m.nets[n.ID], m.endpoints[n.ID] = n, map[string]*Endpoint{}
	undo := func() {
		delete(m.nets, n.ID)
		delete(m.endpoints, n.ID)
		deleteBridge(n)
		os.Remove(filepath.Join(m.netDir(), n.ID+".json"))
	}
	if err := ensureBridge(n); err != nil {
		undo()
		return nil, err
	}
	if err := m.syncRulesLocked(); err != nil {
		undo()
		m.syncRulesLocked()
		return nil, err
	}
	m.dns.listen(n)
	c := *n
	return &c, nil
}

// ipamConfig gives n its subnets, ranges and gateways: those asked,
// checked as dockerd checks them, or a free pool subnet (IPv4; an IPv6
// subnet must be asked for, as dockerd 20.10 has no IPv6 pool). m.mu is
// held.
func (m *Manager) ipamConfig(n *Network, o CreateOpts) error {
	if o.IPv6 != (o.Subnet6 != "") {
		if o.IPv6 { // dockerd 20.10's words: it has no IPv6 pool either
			return fmt.Errorf("could not find an available, non-overlapping IPv6 address pool among the defaults to assign to the network (give an IPv6 --subnet): %w", errdefs.ErrForbidden)
		}
		return fmt.Errorf("an IPv6 subnet needs --ipv6: %w", errdefs.ErrInvalidArgument)
	}
	if o.IPv6 {
		sub, r, gw, err := m.checkPool(6, o.Subnet6, o.IPRange6, o.Gateway6)
		if err != nil {
			return err
		}
		n.Subnet6, n.IPRange6, n.Gateway6, n.ImplicitGateway6 = sub, r, gw, o.Gateway6 == ""
	}
	if o.Subnet == "" {
		if o.IPRange != "" || o.Gateway != "" {
			return fmt.Errorf("a gateway or an IP range needs a subnet: %w", errdefs.ErrInvalidArgument)
		}
		sub, err := m.freeSubnet()
		if err != nil {
			return err
		}
		n.Subnet, n.Gateway = sub, sub.Addr().Next()
		return nil
	}
	sub, r, gw, err := m.checkPool(4, o.Subnet, o.IPRange, o.Gateway)
	if err != nil {
		return err
	}
	n.Subnet, n.IPRange, n.Gateway, n.UserSubnet = sub, r, gw, true
	n.ImplicitGateway = o.Gateway == ""
	return nil
}

// auxAddresses gives n the auxiliary addresses asked for, each within
// the subnet of its family and not its gateway, as dockerd's IPAM
// checks them.
func auxAddresses(n *Network, aux map[string]string) error {
	for name, s := range aux {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("invalid auxiliary address %s=%s: %w", name, s, errdefs.ErrInvalidArgument)
		}
		sub, gw := n.Subnet, n.Gateway
		if a.Is6() {
			sub, gw = n.Subnet6, n.Gateway6
		}
		switch {
		case !sub.IsValid() || !sub.Contains(a) || a == sub.Addr():
			return fmt.Errorf("no matching subnet for aux-address %s: %w", a, errdefs.ErrInvalidArgument)
		case a == gw:
			return fmt.Errorf("failed to allocate secondary ip address (%s:%s): Address already in use: %w", name, a, errdefs.ErrForbidden)
		}
		if n.Aux == nil {
			n.Aux = map[string]netip.Addr{}
		}
		n.Aux[name] = a
	}
	return nil
}

// checkPool parses and checks a subnet of IP version family with its
// range and gateway (each optional; the gateway defaults to the subnet's
// first address). m.mu is held.
func (m *Manager) checkPool(family int, subnet, ipRange, gateway string) (sub, r netip.Prefix, gw netip.Addr, err error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf(format+": %w", append(a, errdefs.ErrInvalidArgument)...)
	}
	maxBits, cidr := 30, "a.b.c.d/n"
	if family == 6 {
		maxBits, cidr = 126, "x:x::/n"
	}
	sub, perr := netip.ParsePrefix(subnet)
	if perr != nil || sub.Addr().Is4() != (family == 4) || sub.Addr().Is4In6() {
		return sub, r, gw, bad("invalid subnet %s: it must be an IPv%d CIDR (%s)", subnet, family, cidr)
	}
	if sub.Bits() > maxBits {
		return sub, r, gw, bad("invalid subnet %s: a /%d has no room for containers", subnet, sub.Bits())
	}
	if sub.Masked() != sub {
		return sub, r, gw, bad("invalid subnet %s: it has host bits set (did you mean %s?)", subnet, sub.Masked())
	}
	for _, other := range m.nets {
		for _, o := range []netip.Prefix{other.Subnet, other.Subnet6} {
			if o.IsValid() && !other.Removing && o.Overlaps(sub) {
				return sub, r, gw, fmt.Errorf("invalid pool request: Pool overlaps with other one on this address space: %w", errdefs.ErrForbidden)
			}
		}
	}
	if ipRange != "" {
		r, perr = netip.ParsePrefix(ipRange)
		if perr != nil || r.Masked() != r || !sub.Contains(r.Addr()) || r.Bits() < sub.Bits() {
			return sub, r, gw, bad("invalid IP range %s: it must be a CIDR within subnet %s", ipRange, subnet)
		}
	}
	gw = sub.Addr().Next()
	if gateway != "" {
		gw, perr = netip.ParseAddr(gateway)
		if perr != nil || !sub.Contains(gw) || gw == sub.Addr() || family == 4 && gw == lastAddr(sub) {
			return sub, r, gw, bad("invalid gateway %s: it must be an address within subnet %s", gateway, subnet)
		}
	}
	return sub, r, gw, nil
}

// freeSubnet is the first pool subnet that overlaps no network and no
// route of the host; m.mu is held (or the manager is not shared yet).
func (m *Manager) freeSubnet() (netip.Prefix, error) {
	routes := hostRoutes()
	for _, p := range m.cfg.Pools {
		for sub := netip.PrefixFrom(p.Base.Masked().Addr(), p.Size); p.Base.Contains(sub.Addr()); sub = nextPrefix(sub) {
			free := true
			for _, n := range m.nets {
				if n.Subnet.IsValid() && n.Subnet.Overlaps(sub) {
					free = false
				}
			}
			for _, r := range routes {
				if r.Bits() > 0 && r.Overlaps(sub) {
					free = false
				}
			}
			if free {
				return sub, nil
			}
			if !sub.IsValid() {
				break
			}
		}
	}
	return netip.Prefix{}, fmt.Errorf("could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network: %w", errdefs.ErrForbidden)
}

// nextPrefix is the prefix of the same size right after p (invalid past
// the end of the address space).
func nextPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	step := uint32(1) << (32 - p.Bits())
	if v+step < v {
		return netip.Prefix{}
	}
	v += step
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), p.Bits())
}

// lastAddr is p's last address (IPv4's broadcast address).
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().AsSlice()
	for i := p.Bits(); i < len(a)*8; i++ {
		a[i/8] |= 0x80 >> (i % 8)
	}
	out, _ := netip.AddrFromSlice(a)
	return out
}

// Remove deletes a network that no container is on, as dockerd: a
// predefined network cannot go, one with endpoints is "in use".
func (m *Manager) Remove(ref string) error {
	m.mu.Lock()
	n, err := m.get(ref)
	if err != nil {
		m.mu.Unlock()
		return err
	}
	if n.Predefined() {
		m.mu.Unlock()
		return fmt.Errorf("%s is a pre-defined network and cannot be removed: %w", n.Name, errdefs.ErrForbidden)
	}
	if len(m.endpoints[n.ID]) > 0 {
		m.mu.Unlock()
		return fmt.Errorf("error while removing network: network %s id %s has active endpoints: %w", n.Name, n.ID, errdefs.ErrForbidden)
	}
	n.Removing = true
	if err := m.save(n); err != nil {
		n.Removing = false
		m.mu.Unlock()
		return err
	}
	m.mu.Unlock()
	return m.finishRemove(n)
}

// finishRemove takes down a network marked Removing: DNS, rules, bridge,
// then the record (a crash in between is finished at start-up).
func (m *Manager) finishRemove(n *Network) error {
	if m.dns != nil {
		m.dns.unlisten(n)
	}
	m.mu.Lock()
	delete(m.nets, n.ID)
	err := m.syncRulesLocked()
	m.mu.Unlock()
	if err != nil {
		m.mu.Lock()
		m.nets[n.ID] = n
		m.mu.Unlock()
		return err
	}
	if err := deleteBridge(n); err != nil {
		m.log.Warn("delete bridge", "bridge", n.Bridge, "err", err)
	}
	os.RemoveAll(filepath.Join(m.leaseDir(), n.ID))
	m.mu.Lock()
	delete(m.endpoints, n.ID)
	m.mu.Unlock()
	return os.Remove(filepath.Join(m.netDir(), n.ID+".json"))
}

// InUse reports whether a network has endpoints.
func (m *Manager) InUse(id string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.endpoints[id]) > 0
}
