package network

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"
)

// TestPortProxy: an IPv6 binding's relay carries TCP both ways (with the
// client's half close passed on) and UDP replies back to their client,
// and closing it ends its relays and frees the port.
func TestPortProxy(t *testing.T) {
	if !hostHasIPv6() {
		t.Skip("the host has no IPv6 loopback")
	}
	// A TCP server on IPv4 that answers what it read, once the client
	// has closed its side.
	srv, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	go func() {
		for {
			c, err := srv.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(append([]byte("got "), b...))
			}()
		}
	}()
	to := srv.Addr().(*net.TCPAddr).AddrPort()
	x, err := listenProxy(PortMapping{Proto: "tcp", HostIP: netip.IPv6Loopback()})
	if err != nil {
		t.Fatal(err)
	}
	port := x.ln.Addr().(*net.TCPAddr).Port
	go x.serve(to, slog.Default())
	c, err := net.Dial("tcp6", x.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c.Write([]byte("hello"))
	c.(*net.TCPConn).CloseWrite()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if b, err := io.ReadAll(c); string(b) != "got hello" {
		t.Fatalf("through the relay: %q %v", b, err)
	}
	c.Close()
	// A connection left open ends with the proxy.
	open, err := net.Dial("tcp6", x.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	time.Sleep(50 * time.Millisecond) // relayed
	x.close()
	open.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := open.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("an open relay after close: %v, want EOF", err)
	}
	l, err := net.Listen("tcp6", net.JoinHostPort("::1", strconv.Itoa(port)))
	if err != nil {
		t.Fatalf("the port after close: %v", err)
	}
	l.Close()

	// UDP: an echo server on IPv4.
	us, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer us.Close()
	go func() {
		b := make([]byte, 1500)
		for {
			n, from, err := us.ReadFromUDPAddrPort(b)
			if err != nil {
				return
			}
			us.WriteToUDPAddrPort(append([]byte("echo "), b[:n]...), from)
		}
	}()
	u, err := listenProxy(PortMapping{Proto: "udp", HostIP: netip.IPv6Loopback()})
	if err != nil {
		t.Fatal(err)
	}
	defer u.close()
	go u.serve(us.LocalAddr().(*net.UDPAddr).AddrPort(), slog.Default())
	for _, msg := range []string{"one", "two"} { // two clients
		uc, err := net.Dial("udp6", u.pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		uc.Write([]byte(msg))
		uc.SetDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 100)
		n, err := uc.Read(b)
		if string(b[:n]) != "echo "+msg {
			t.Errorf("UDP through the relay: %q %v", b[:n], err)
		}
		uc.Close()
	}
}
