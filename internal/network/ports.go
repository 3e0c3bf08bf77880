package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/tent-project/tent/internal/errdefs"
)

// Published ports. A binding on an IPv4 address is a DNAT rule of the
// engine's table (rules_linux.go). A binding on an IPv6 address is a
// socket of the daemon's that relays to the container's IPv4 address
// (proxy.go), as docker's userland proxy does: the kernel does not
// translate IPv6 to IPv4, and a packet from ::1 may not leave the
// loopback interface, so even a container with an IPv6 address could
// not be reached from [::1] by a DNAT. A binding without an address
// (`-p 8080:80`) is published on 0.0.0.0 and on :: on one port, as
// dockerd 20.10 does, when the host has IPv6.

// allocatePorts gives each mapping its host port: the one asked, unless
// it is taken (docker's "port is already allocated"), or a free one of
// the ephemeral range; IPv6 bindings get their listening socket (which
// holds the port), served once the endpoint has its address. On error
// nothing is kept. m.mu is held.
func (m *Manager) allocatePorts(n *Network, asked []PortMapping) (out []PortMapping, proxies []*portProxy, err error) {
	if len(asked) == 0 {
		return nil, nil, nil
	}
	defer func() {
		if err != nil {
			closeProxies(proxies)
			proxies = nil
		}
	}()
	var taken []PortMapping
	for _, eps := range m.endpoints {
		for _, ep := range eps {
			taken = append(taken, ep.Ports...)
		}
	}
	lo, hi := ephemeralRange()
	for _, p := range asked {
		if !p.HostIP.IsValid() {
			p.HostIP = n.HostBinding
		}
		group, err := bindingsOf(p)
		if err != nil {
			return nil, nil, err
		}
		first, last, ephemeral := p.HostPort, p.HostPortEnd, p.HostPort == 0
		if ephemeral {
			first, last = uint16(lo), uint16(hi)
		} else if last < first {
			last = first
		}
		var lastErr error
		found := false
		for port := int(first); port <= int(last) && !found; port++ {
			var opened []*portProxy
			if lastErr = reserve(group, uint16(port), taken, &opened); lastErr == nil {
				found = true
				proxies = append(proxies, opened...)
			} else {
				closeProxies(opened)
			}
		}
		if !found {
			if ephemeral || first != last && lastErr == nil {
				lastErr = fmt.Errorf("no free host port for %d/%s: %w", p.ContainerPort, p.Proto, errdefs.ErrUnavailable)
			}
			return nil, nil, lastErr
		}
		taken = append(taken, group...)
		out = append(out, group...)
	}
	return out, proxies, nil
}

// bindingsOf is what one asked mapping is published on: its address
// (or its network's host_binding_ipv4), or, without one, 0.0.0.0 and ::
// (:: where the host has IPv6 and the protocol is one the proxy relays).
func bindingsOf(p PortMapping) ([]PortMapping, error) {
	p.HostPortEnd = 0
	if p.HostIP.IsValid() {
		p.HostIP = p.HostIP.Unmap()
		if p.HostIP.Is6() && p.Proto == "sctp" {
			return nil, fmt.Errorf("publishing an SCTP port on an IPv6 address (%s) is not supported: %w", p.HostIP, errdefs.ErrNotImplemented)
		}
		return []PortMapping{p}, nil
	}
	v4, v6 := p, p
	v4.HostIP, v6.HostIP = netip.IPv4Unspecified(), netip.IPv6Unspecified()
	if p.Proto == "sctp" || !hostHasIPv6() {
		return []PortMapping{v4}, nil
	}
	return []PortMapping{v4, v6}, nil
}

// reserve takes port for each binding of group, or none: it is not one
// of taken's (a container's) nor a host process's; an IPv6 binding's
// socket is opened (and added to opened) on the way.
func reserve(group []PortMapping, port uint16, taken []PortMapping, opened *[]*portProxy) error {
	for i := range group {
		group[i].HostPort = port
		p := group[i]
		if slices.ContainsFunc(taken, func(t PortMapping) bool { return sameBinding(t, p) }) {
			return fmt.Errorf("driver failed programming external connectivity: Bind for %s failed: port is already allocated: %w", hostPortString(p), errdefs.ErrConflict)
		}
		var err error
		if p.HostIP.Is6() {
			var x *portProxy
			if x, err = listenProxy(p); err == nil {
				*opened = append(*opened, x)
			}
		} else {
			err = probePort(p)
		}
		if err != nil {
			return fmt.Errorf("driver failed programming external connectivity: %v: %w", err, errdefs.ErrConflict)
		}
	}
	return nil
}

// sameBinding reports whether two bindings want one socket: one
// protocol, port and family, and the same address or a wildcard.
func sameBinding(a, b PortMapping) bool {
	ia, ib := a.HostIP, b.HostIP
	if !ia.IsValid() { // a record from before IPv6 bindings: 0.0.0.0
		ia = netip.IPv4Unspecified()
	}
	return a.Proto == b.Proto && a.HostPort == b.HostPort && ia.Is4() == ib.Is4() &&
		(ia.IsUnspecified() || ib.IsUnspecified() || ia == ib)
}

func hostPortString(p PortMapping) string {
	ip := "0.0.0.0"
	if p.HostIP.IsValid() {
		ip = p.HostIP.String()
	}
	return net.JoinHostPort(ip, strconv.Itoa(int(p.HostPort)))
}

// probePort tells whether a host process holds an IPv4 port already (the
// engine's DNAT would hide it, or be hidden by it).
func probePort(p PortMapping) error {
	addr := hostPortString(p)
	switch p.Proto {
	case "tcp":
		l, err := net.Listen("tcp4", addr)
		if err != nil {
			return err
		}
		return l.Close()
	case "udp":
		c, err := net.ListenPacket("udp4", addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	return nil
}

// hostHasIPv6 reports whether the host can listen on IPv6 (a kernel
// booted with ipv6.disable=1, or IPv6 disabled on loopback, cannot).
var hostHasIPv6 = sync.OnceValue(func() bool {
	l, err := net.Listen("tcp6", "[::1]:0")
	if err == nil {
		l.Close()
	}
	return err == nil
})

// ephemeralRange is the kernel's local port range (docker's too).
func ephemeralRange() (int, int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if f := strings.Fields(string(b)); err == nil && len(f) == 2 {
		lo, err1 := strconv.Atoi(f[0])
		hi, err2 := strconv.Atoi(f[1])
		if err1 == nil && err2 == nil && lo > 0 && hi >= lo {
			return lo, hi
		}
	}
	return 32768, 60999
}

// serveProxies starts relaying ep's IPv6 bindings to its address and
// keeps them until the endpoint is released; m.mu is held.
func (m *Manager) serveProxies(ep *Endpoint, proxies []*portProxy) {
	if len(proxies) == 0 {
		return
	}
	m.proxies[ep.ID] = proxies
	for _, x := range proxies {
		go x.serve(netip.AddrPortFrom(ep.IP, x.m.ContainerPort), m.log)
	}
}

// closeProxiesOf stops ep's relays; m.mu is held.
func (m *Manager) closeProxiesOf(ep *Endpoint) {
	closeProxies(m.proxies[ep.ID])
	delete(m.proxies, ep.ID)
}

// resumeProxies opens again the IPv6 bindings of the endpoints a
// restarted daemon found (their containers kept running; the sockets
// were the last daemon's); m.mu is held.
func (m *Manager) resumeProxies() {
	for _, eps := range m.endpoints {
		for _, ep := range eps {
			if m.proxies[ep.ID] != nil {
				continue
			}
			var proxies []*portProxy
			for _, p := range ep.Ports {
				if !p.HostIP.Is6() {
					continue
				}
				x, err := listenProxy(p)
				if err != nil {
					m.log.Warn("published port lost", "container", ep.Container, "port", hostPortString(p), "err", err)
					continue
				}
				proxies = append(proxies, x)
			}
			m.serveProxies(ep, proxies)
		}
	}
}
