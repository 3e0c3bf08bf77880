package network

import (
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// The engine's DNS server answers on each user-defined network's gateway
// address (port 53, UDP and TCP): the names of the containers on that
// network (container name, each --network-alias, the short container
// ID) and their addresses' reverse names; every other question goes to
// the host's resolvers, loopback ones included (the daemon is in the
// host's namespace, as docker's embedded server forwards). The default
// bridge resolves no names, as docker's. The server is the daemon's: a
// daemon killed and started again listens again, and its containers,
// which kept running, resolve again (docs/network.md says why it is not
// a socket in each container as docker's 127.0.0.11).

type dnsServer struct {
	m        *Manager
	upstream []string

	mu      sync.Mutex
	servers map[string][]*dns.Server // by network ID
}

func newDNSServer(m *Manager) *dnsServer {
	return &dnsServer{m: m, upstream: hostResolvers(), servers: map[string][]*dns.Server{}}
}

// hostResolvers are the nameservers of the host's /etc/resolv.conf, as
// host:port.
func hostResolvers() []string {
	b, _ := os.ReadFile("/etc/resolv.conf")
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "nameserver" {
			if ip, err := netip.ParseAddr(f[1]); err == nil {
				out = append(out, net.JoinHostPort(ip.String(), "53"))
			}
		}
	}
	return out
}

func (s *dnsServer) listen(n *Network) {
	if !n.UserDefined() || !n.Gateway.IsValid() {
		return
	}
	addr := net.JoinHostPort(n.Gateway.String(), "53")
	h := dns.HandlerFunc(func(w dns.ResponseWriter, q *dns.Msg) { s.answer(n.ID, w, q) })
	var srvs []*dns.Server
	if pc, err := net.ListenPacket("udp4", addr); err == nil {
		srvs = append(srvs, &dns.Server{PacketConn: pc, Handler: h})
	} else {
		s.m.log.Warn("DNS server: no UDP listener; containers on the network resolve no names", "network", n.Name, "err", err)
	}
	if l, err := net.Listen("tcp4", addr); err == nil {
		srvs = append(srvs, &dns.Server{Listener: l, Handler: h})
	} else {
		s.m.log.Warn("DNS server: no TCP listener", "network", n.Name, "err", err)
	}
	for _, srv := range srvs {
		go srv.ActivateAndServe()
	}
	s.mu.Lock()
	s.servers[n.ID] = srvs
	s.mu.Unlock()
}

func (s *dnsServer) unlisten(n *Network) {
	s.mu.Lock()
	srvs := s.servers[n.ID]
	delete(s.servers, n.ID)
	s.mu.Unlock()
	stop(srvs)
}

// stop ends servers and closes their sockets (Shutdown alone leaves a
// socket open when its server's goroutine has not begun serving yet).
func stop(srvs []*dns.Server) {
	for _, srv := range srvs {
		srv.Shutdown()
		if srv.PacketConn != nil {
			srv.PacketConn.Close()
		}
		if srv.Listener != nil {
			srv.Listener.Close()
		}
	}
}

func (s *dnsServer) close() {
	s.mu.Lock()
	all := s.servers
	s.servers = map[string][]*dns.Server{}
	s.mu.Unlock()
	for _, srvs := range all {
		stop(srvs)
	}
}

// answer replies to q from the network's endpoints, or forwards it.
func (s *dnsServer) answer(netID string, w dns.ResponseWriter, q *dns.Msg) {
	if len(q.Question) == 1 {
		if r := s.local(netID, q); r != nil {
			w.WriteMsg(r)
			return
		}
	}
	upstream := s.upstream
	if from, err := netip.ParseAddrPort(w.RemoteAddr().String()); err == nil {
		for _, ep := range s.m.Endpoints(netID) {
			if ep.IP == from.Addr().Unmap() && len(ep.DNS) > 0 {
				upstream = nil
				for _, ip := range ep.DNS {
					upstream = append(upstream, net.JoinHostPort(ip, "53"))
				}
			}
		}
	}
	w.WriteMsg(forward(w, q, upstream))
}

// local answers a question about a container's name or address on the
// network; nil: not one of ours.
func (s *dnsServer) local(netID string, q *dns.Msg) *dns.Msg {
	question := q.Question[0]
	name := strings.ToLower(strings.TrimSuffix(question.Name, "."))
	eps := s.m.Endpoints(netID)
	r := new(dns.Msg)
	r.SetReply(q)
	r.Authoritative, r.RecursionAvailable = true, true
	if question.Qtype == dns.TypePTR {
		for _, ep := range eps {
			for _, ip := range []netip.Addr{ep.IP, ep.IP6} {
				if rev, _ := dns.ReverseAddr(ip.String()); ip.IsValid() && strings.EqualFold(rev, question.Name) {
					r.Answer = append(r.Answer, &dns.PTR{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: 600},
						Ptr: dns.Fqdn(ep.Name)})
					return r
				}
			}
		}
		return nil
	}
	found := false
	for _, ep := range eps {
		if !ep.answers(name) {
			continue
		}
		found = true
		if question.Qtype == dns.TypeA || question.Qtype == dns.TypeANY {
			r.Answer = append(r.Answer, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 600},
				A: ep.IP.AsSlice()})
		}
		if ep.IP6.IsValid() && (question.Qtype == dns.TypeAAAA || question.Qtype == dns.TypeANY) {
			r.Answer = append(r.Answer, &dns.AAAA{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 600},
				AAAA: ep.IP6.AsSlice()})
		}
	}
	if !found {
		return nil
	}
	return r // other types of a known name (AAAA without IPv6): no records, no error
}

// answers reports whether name is one of the endpoint's DNS names.
func (ep *Endpoint) answers(name string) bool {
	if name == strings.ToLower(ep.Name) || len(ep.Container) >= 12 && name == ep.Container[:12] {
		return true
	}
	for _, a := range ep.Aliases {
		if name == strings.ToLower(a) {
			return true
		}
	}
	return false
}

// DNSNames are the names an endpoint answers to.
func (ep *Endpoint) DNSNames() []string {
	out := []string{ep.Name}
	out = append(out, ep.Aliases...)
	if len(ep.Container) >= 12 {
		out = append(out, ep.Container[:12])
	}
	return out
}

// forward asks the upstream servers, in order, over the protocol q came.
func forward(w dns.ResponseWriter, q *dns.Msg, upstream []string) *dns.Msg {
	c := &dns.Client{Timeout: 3 * time.Second}
	if _, ok := w.LocalAddr().(*net.TCPAddr); ok {
		c.Net = "tcp"
	}
	for _, up := range upstream {
		r, _, err := c.Exchange(q, up)
		if err == nil && r != nil {
			return r
		}
	}
	r := new(dns.Msg)
	r.SetRcode(q, dns.RcodeServerFailure)
	return r
}
