package network

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"time"
)

// udpIdle is how long a UDP client's relay lives without a datagram
// either way (docker-proxy's 90 seconds).
const udpIdle = 90 * time.Second

// portProxy relays one IPv6 binding of a published port to a container's
// IPv4 address (ports.go says why): TCP connections copied both ways
// (between two TCP sockets Go's io.Copy splices in the kernel), half
// closes passed on; UDP datagrams through one socket per client address.
type portProxy struct {
	m  PortMapping
	ln net.Listener // tcp
	pc *net.UDPConn // udp

	mu     sync.Mutex
	conns  map[io.Closer]struct{} // relays' sockets, closed with the proxy
	closed bool
}

// listenProxy opens p's socket (IPV6_V6ONLY: IPv4 is the table's).
func listenProxy(p PortMapping) (*portProxy, error) {
	addr := net.JoinHostPort(p.HostIP.String(), strconv.Itoa(int(p.HostPort)))
	x := &portProxy{m: p, conns: map[io.Closer]struct{}{}}
	var err error
	switch p.Proto {
	case "tcp":
		x.ln, err = net.Listen("tcp6", addr)
	case "udp":
		x.pc, err = net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(p.HostIP, p.HostPort)))
	default:
		err = fmt.Errorf("%s ports are not published on IPv6 addresses", p.Proto)
	}
	if err != nil {
		return nil, err
	}
	return x, nil
}

// serve relays to to until the proxy is closed.
func (x *portProxy) serve(to netip.AddrPort, log *slog.Logger) {
	if x.pc != nil {
		x.serveUDP(to)
		return
	}
	for {
		c, err := x.ln.Accept()
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil { // out of descriptors, say: the next may do
			log.Warn("published port: accept", "port", hostPortString(x.m), "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		go x.relayTCP(c.(*net.TCPConn), to)
	}
}

func (x *portProxy) relayTCP(in *net.TCPConn, to netip.AddrPort) {
	defer in.Close()
	out, err := net.DialTCP("tcp", nil, net.TCPAddrFromAddrPort(to))
	if err != nil {
		return // the client sees its connection closed, as with docker-proxy
	}
	defer out.Close()
	if !x.track(in, out) {
		return
	}
	defer x.untrack(in, out)
	done := make(chan struct{})
	go func() {
		io.Copy(out, in)
		out.CloseWrite()
		close(done)
	}()
	io.Copy(in, out)
	in.CloseWrite()
	<-done
}

func (x *portProxy) serveUDP(to netip.AddrPort) {
	var mu sync.Mutex
	flows := map[netip.AddrPort]*net.UDPConn{} // by client
	buf := make([]byte, 65535)
	for {
		n, from, err := x.pc.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		mu.Lock()
		out := flows[from]
		mu.Unlock()
		if out == nil {
			if out, err = net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(to)); err != nil {
				continue
			}
			if !x.track(out) {
				out.Close()
				return
			}
			mu.Lock()
			flows[from] = out
			mu.Unlock()
			go func() {
				defer func() {
					mu.Lock()
					delete(flows, from)
					mu.Unlock()
					x.untrack(out)
					out.Close()
				}()
				b := make([]byte, 65535)
				for {
					n, err := out.Read(b)
					if err != nil {
						return // idle, or closed
					}
					out.SetReadDeadline(time.Now().Add(udpIdle))
					x.pc.WriteToUDPAddrPort(b[:n], from)
				}
			}()
		}
		out.SetReadDeadline(time.Now().Add(udpIdle))
		out.Write(buf[:n])
	}
}

// track records a relay's sockets; false: the proxy is closed.
func (x *portProxy) track(cs ...io.Closer) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.closed {
		return false
	}
	for _, c := range cs {
		x.conns[c] = struct{}{}
	}
	return true
}

func (x *portProxy) untrack(cs ...io.Closer) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, c := range cs {
		delete(x.conns, c)
	}
}

// close stops listening and ends every relay.
func (x *portProxy) close() {
	x.mu.Lock()
	x.closed = true
	conns := x.conns
	x.conns = nil
	x.mu.Unlock()
	if x.ln != nil {
		x.ln.Close()
	}
	if x.pc != nil {
		x.pc.Close()
	}
	for c := range conns {
		c.Close()
	}
}

func closeProxies(xs []*portProxy) {
	for _, x := range xs {
		x.close()
	}
}
