package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	"golang.org/x/sys/unix"
)

// The engine's packet filter rules live in one nftables table of its
// own (Config.Table, family ip; and one of the same name in family ip6
// while a network has IPv6: forward and postrouting alone, as IPv6
// bindings of published ports are relayed: ports.go), rebuilt whole in one atomic transaction
// whenever a network or a published port changes: the table is the
// networks' and ports' function, so a restart after a crash makes it
// right by building it again, and no rule is ever left behind.
//
//	forward     (filter): DNATed traffic passes; an internal network's
//	            traffic stays on its bridge; one network's traffic does
//	            not reach another's bridge (docker's isolation)
//	prerouting,
//	output      (nat): to a local address → ports
//	ports       a DNAT per published port
//	postrouting (nat): masquerade what leaves a network for elsewhere,
//	            what reaches a bridge from 127.0.0.0/8 (ports published
//	            on the loopback address) and hairpin traffic (a
//	            container to its own network's published port)

func (m *Manager) syncRules() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncRulesLocked()
}

// syncRulesLocked rebuilds the table; m.mu is held.
func (m *Manager) syncRulesLocked() error {
	var nets []*Network
	for _, n := range m.nets {
		if n.Driver == DriverBridge && !n.Removing {
			nets = append(nets, n)
		}
	}
	var ports []portRule
	for _, eps := range m.endpoints {
		for _, ep := range eps {
			for _, p := range ep.Ports {
				if !p.HostIP.Is6() { // IPv6 bindings are relayed (ports.go)
					ports = append(ports, portRule{p, ep.IP})
				}
			}
		}
	}
	var icc iccRules // the bridge ports of networks with icc off, and links' exceptions
	for _, n := range nets {
		if !n.NoICC {
			continue
		}
		for _, ep := range m.endpoints[n.ID] {
			icc.quiet = append(icc.quiet, ep.HostVeth)
			for _, l := range ep.Links {
				if peer := m.endpoints[n.ID][l.Peer]; peer != nil {
					icc.links = append(icc.links, linkRule{from: ep.HostVeth, to: peer.HostVeth, LinkedPort: l})
				}
			}
		}
		icc.quiet = append(icc.quiet, uplinkNames(n)...)
	}
	if err := writeTable(m.cfg.Table, nets, ports, icc); err != nil {
		return fmt.Errorf("nftables table %s: %w", m.cfg.Table, err)
	}
	if err := syncDockerUser(m.cfg.Table, nets); err != nil {
		m.log.Warn("accept rules in docker's DOCKER-USER chain", "err", err)
	}
	return nil
}

// syncDockerUser keeps accept rules for the engine's bridges at the top
// of docker's DOCKER-USER chain (iptables-nft's table ip filter) while
// one exists. A dockerd with its iptables on sets the FORWARD chain's
// policy to DROP, and a packet must pass every base chain of its hook:
// without these, forwarded traffic of the engine's networks (bridged
// traffic too, with the br_netfilter dockerd loads) would be dropped.
// DOCKER-USER is where docker documents that others' rules go. The rules
// carry the table's name as their comment, so that they are found again
// and replaced, and removed with the last network.
func syncDockerUser(table string, nets []*Network) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	filter := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "filter"}
	chain, err := c.ListChain(filter, "DOCKER-USER")
	if err != nil {
		return nil // no docker here (or not iptables-nft's)
	}
	rules, err := c.GetRules(filter, chain)
	if err != nil {
		return err
	}
	tag := "tent:" + table
	for _, r := range rules {
		if comment, _ := userdata.GetString(r.UserData, userdata.TypeComment); comment == tag {
			if err := c.DelRule(r); err != nil {
				return err
			}
		}
	}
	for _, n := range nets {
		for _, match := range [][]expr.Any{iif(n.Bridge, true), oif(n.Bridge, true)} {
			c.InsertRule(&nftables.Rule{Table: filter, Chain: chain, UserData: userdata.AppendString(nil, userdata.TypeComment, tag),
				Exprs: append(append(match, &expr.Counter{}), verdict(expr.VerdictAccept)...)})
		}
	}
	return c.Flush()
}

type portRule struct {
	PortMapping
	to netip.Addr
}

// DeleteTable removes the engine's table (for tests and clean-ups).
func DeleteTable(name string) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	for _, f := range []nftables.TableFamily{nftables.TableFamilyIPv4, nftables.TableFamilyIPv6, nftables.TableFamilyBridge} {
		t := &nftables.Table{Family: f, Name: name}
		c.AddTable(t)
		c.DelTable(t)
	}
	if err := c.Flush(); err != nil {
		return err
	}
	return syncDockerUser(name, nil)
}

// TableExists reports whether the engine's table is there.
func TableExists(name string) bool {
	c, err := nftables.New()
	if err != nil {
		return false
	}
	_, err = c.ListTableOfFamily(name, nftables.TableFamilyIPv4)
	return err == nil
}

func writeTable(name string, nets []*Network, ports []portRule, icc iccRules) error {
	c, err := nftables.New()
	if err != nil {
		return err
	}
	t := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: name}
	c.AddTable(t) // so that the delete finds one
	c.DelTable(t)
	c.AddTable(t)
	if err := forwardChain(c, t, nets); err != nil {
		return err
	}
	natChains(c, t, ports)
	postrouting(c, t, nets)
	t6 := &nftables.Table{Family: nftables.TableFamilyIPv6, Name: name}
	c.AddTable(t6)
	c.DelTable(t6)
	if slices.ContainsFunc(nets, (*Network).IPv6) {
		c.AddTable(t6)
		if err := forwardChain(c, t6, nets); err != nil {
			return err
		}
		postrouting(c, t6, nets)
	}
	tb := &nftables.Table{Family: nftables.TableFamilyBridge, Name: name}
	c.AddTable(tb)
	c.DelTable(tb)
	if len(icc.quiet) > 0 {
		c.AddTable(tb)
		if err := iccChain(c, tb, icc); err != nil {
			return err
		}
	}
	return c.Flush()
}

// iccChain (family bridge) drops what a bridge would pass from one of
// the quiet ports to another: containers of a network with icc off do
// not reach each other (what goes through the host, a published port,
// is routed, not bridged, and passes). A port is known by its name, the
// container's host veth or an overflow bridge's uplink: this kernel's
// nftables may lack the bridge's own name (nft_meta_bridge), and the
// host's bridge-nf-call-iptables, which would show bridged traffic to
// the ip family's forward chain as docker's rule needs, is the host's.
// Before the drop: ARP passes, and each --link's exposed ports (and
// their answers) between its two containers' ports.
func iccChain(c *nftables.Conn, t *nftables.Table, icc iccRules) error {
	ports := &nftables.Set{Table: t, Name: "quiet", KeyType: nftables.TypeIFName}
	var elems []nftables.SetElement
	for _, q := range icc.quiet {
		elems = append(elems, nftables.SetElement{Key: ifname(q)})
	}
	if err := c.AddSet(ports, elems); err != nil {
		return err
	}
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	in := func(key expr.MetaKey) []expr.Any {
		return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Lookup{SourceRegister: 1, SetName: ports.Name, SetID: ports.ID}}
	}
	// ARP passes (docker's rules see IP alone): a link's two containers
	// must find each other's addresses, and the others learn nothing
	// they could use.
	accepted := verdict(expr.VerdictAccept)
	addRule(c, fwd, []expr.Any{&expr.Meta{Key: expr.MetaKeyPROTOCOL, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, unix.ETH_P_ARP)}}, accepted)
	// A link lets its container reach the linked one's exposed ports,
	// and the answers back (dockerd's icc exceptions for --link).
	for _, l := range icc.links {
		proto := []expr.Any{&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{l4proto[l.Proto]}}}
		port := func(offset uint32) []expr.Any {
			return []expr.Any{&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: offset, Len: 2},
				&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, l.Port)}}
		}
		addRule(c, fwd, iif(l.from, true), oif(l.to, true), proto, port(2), accepted) // its destination port
		addRule(c, fwd, iif(l.to, true), oif(l.from, true), proto, port(0), accepted) // the answer's source port
	}
	addRule(c, fwd, in(expr.MetaKeyIIFNAME), in(expr.MetaKeyOIFNAME), verdict(expr.VerdictDrop))
	return nil
}

// iccRules are what a bridge must not pass with icc off (quiet: ports
// by name) and the links' exceptions.
type iccRules struct {
	quiet []string
	links []linkRule
}

// linkRule lets the port from reach LinkedPort on the port to.
type linkRule struct {
	from, to string
	LinkedPort
}

var l4proto = map[string]byte{"tcp": unix.IPPROTO_TCP, "udp": unix.IPPROTO_UDP, "sctp": unix.IPPROTO_SCTP}

var accept = nftables.ChainPolicyAccept

// addRule adds a rule made of the parts' expressions, in order.
func addRule(c *nftables.Conn, ch *nftables.Chain, parts ...[]expr.Any) {
	var e []expr.Any
	for _, p := range parts {
		e = append(e, p...)
	}
	c.AddRule(&nftables.Rule{Table: ch.Table, Chain: ch, Exprs: e})
}

// forwardChain lets DNATed traffic pass, keeps an internal network's
// traffic on its bridge and one network's traffic off another's bridge.
func forwardChain(c *nftables.Conn, t *nftables.Table, nets []*Network) error {
	bridges := &nftables.Set{Table: t, Name: "bridges", KeyType: nftables.TypeIFName}
	var elems []nftables.SetElement
	for _, n := range nets {
		elems = append(elems, nftables.SetElement{Key: ifname(n.Bridge)})
	}
	if err := c.AddSet(bridges, elems); err != nil {
		return err
	}
	fwd := c.AddChain(&nftables.Chain{Name: "forward", Table: t, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept})
	accepted, dropped := verdict(expr.VerdictAccept), verdict(expr.VerdictDrop)
	addRule(c, fwd, ctDNAT(), accepted)
	for _, n := range nets {
		if n.Internal {
			addRule(c, fwd, iif(n.Bridge, true), oif(n.Bridge, false), dropped)
			addRule(c, fwd, oif(n.Bridge, true), iif(n.Bridge, false), dropped)
		}
		addRule(c, fwd, iif(n.Bridge, true), oif(n.Bridge, false), []expr.Any{&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
			&expr.Lookup{SourceRegister: 1, SetName: bridges.Name, SetID: bridges.ID}}, dropped)
	}
	return nil
}

// natChains DNAT what comes to a local address's published port (IPv4).
func natChains(c *nftables.Conn, t *nftables.Table, ports []portRule) {
	portsChain := c.AddChain(&nftables.Chain{Name: "ports", Table: t})
	for _, hook := range []struct {
		name string
		num  *nftables.ChainHook
	}{{"prerouting", nftables.ChainHookPrerouting}, {"output", nftables.ChainHookOutput}} {
		ch := c.AddChain(&nftables.Chain{Name: hook.name, Table: t, Type: nftables.ChainTypeNAT,
			Hooknum: hook.num, Priority: nftables.ChainPriorityNATDest, Policy: &accept})
		addRule(c, ch, []expr.Any{&expr.Fib{Register: 1, FlagDADDR: true, ResultADDRTYPE: true},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.NativeEndian.AppendUint32(nil, unix.RTN_LOCAL)},
			&expr.Verdict{Kind: expr.VerdictJump, Chain: portsChain.Name}})
	}
	for _, p := range ports {
		var e []expr.Any
		if p.HostIP.IsValid() && !p.HostIP.IsUnspecified() {
			e = append(e, addrMatch(false, netip.PrefixFrom(p.HostIP, 32))...)
		}
		proto := l4proto[p.Proto]
		to := p.to.As4()
		e = append(e,
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binary.BigEndian.AppendUint16(nil, p.HostPort)},
			&expr.Immediate{Register: 1, Data: to[:]},
			&expr.Immediate{Register: 2, Data: binary.BigEndian.AppendUint16(nil, p.ContainerPort)},
			&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegProtoMin: 2, Specified: true},
		)
		addRule(c, portsChain, e)
	}
}

// postrouting masquerades what leaves a network for elsewhere and, in
// IPv4, what reaches a bridge from 127.0.0.0/8 (ports published on the
// loopback address) and hairpin traffic (a container to its own
// network's published port).
func postrouting(c *nftables.Conn, t *nftables.Table, nets []*Network) {
	post := c.AddChain(&nftables.Chain{Name: "postrouting", Table: t, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource, Policy: &accept})
	loopback := netip.MustParsePrefix("127.0.0.0/8")
	masq := []expr.Any{&expr.Masq{}}
	for _, n := range nets {
		if t.Family == nftables.TableFamilyIPv6 {
			if n.IPv6() && !n.Internal && !n.NoMasquerade {
				addRule(c, post, addrMatch(true, n.Subnet6), oif(n.Bridge, false), masq)
			}
			continue
		}
		if !n.Internal && !n.NoMasquerade {
			addRule(c, post, addrMatch(true, n.Subnet), oif(n.Bridge, false), masq)
		}
		addRule(c, post, oif(n.Bridge, true), addrMatch(true, loopback), masq)
		addRule(c, post, oif(n.Bridge, true), addrMatch(true, n.Subnet), ctDNAT(), masq)
	}
}

// ifname is an interface name as nftables compares it.
func ifname(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

// iif and oif match the input or output interface's name (or, with eq
// false, any other name).
func iif(name string, eq bool) []expr.Any { return ifMatch(expr.MetaKeyIIFNAME, name, eq) }
func oif(name string, eq bool) []expr.Any { return ifMatch(expr.MetaKeyOIFNAME, name, eq) }

func ifMatch(key expr.MetaKey, name string, eq bool) []expr.Any {
	op := expr.CmpOpEq
	if !eq {
		op = expr.CmpOpNeq
	}
	return []expr.Any{&expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: op, Register: 1, Data: ifname(name)}}
}

// addrMatch matches the source (src) or destination address against p,
// in p's family.
func addrMatch(src bool, p netip.Prefix) []expr.Any {
	var offset uint32 // in the IPv4 or IPv6 header
	switch {
	case p.Addr().Is4() && src:
		offset = 12
	case p.Addr().Is4():
		offset = 16
	case src:
		offset = 8
	default:
		offset = 24
	}
	a := p.Masked().Addr().AsSlice()
	mask := make([]byte, len(a))
	for i := range p.Bits() {
		mask[i/8] |= 0x80 >> (i % 8)
	}
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: uint32(len(a))},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: uint32(len(a)), Mask: mask, Xor: make([]byte, len(a))},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: a},
	}
}

// ctDNAT matches connections whose destination was NATed (a published
// port).
func ctDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATUS},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4,
			Mask: binary.NativeEndian.AppendUint32(nil, 0x20), Xor: []byte{0, 0, 0, 0}}, // IPS_DST_NAT
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

func verdict(k expr.VerdictKind) []expr.Any { return []expr.Any{&expr.Verdict{Kind: k}} }
