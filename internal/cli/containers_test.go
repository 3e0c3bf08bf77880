package cli

import (
	"net/netip"
	"testing"

	"github.com/moby/moby/api/types/container"
)

// TestDisplayPorts: ps's PORTS column, the docker CLI's for the same
// containers (seen against dockerd 20.10 with docker CLI 28).
func TestDisplayPorts(t *testing.T) {
	ip := netip.MustParseAddr
	bound := func(addr string, pub, priv uint16) container.PortSummary {
		return container.PortSummary{IP: ip(addr), PublicPort: pub, PrivatePort: priv, Type: "tcp"}
	}
	exposed := func(priv uint16, proto string) container.PortSummary {
		return container.PortSummary{PrivatePort: priv, Type: proto}
	}
	for _, c := range []struct {
		ports []container.PortSummary
		want  string
	}{
		{nil, ""},
		{[]container.PortSummary{bound("::1", 18182, 80), bound("::", 18181, 80), bound("0.0.0.0", 18181, 80)},
			"0.0.0.0:18181->80/tcp, [::]:18181->80/tcp, [::1]:18182->80/tcp"},
		{[]container.PortSummary{exposed(8080, "tcp"), exposed(60, "udp"), exposed(443, "tcp"), exposed(80, "tcp"), exposed(53, "udp")},
			"53/udp, 80/tcp, 443/tcp, 60/udp, 8080/tcp"},
		{[]container.PortSummary{bound("0.0.0.0", 8000, 8000), bound("::", 8000, 8000), bound("0.0.0.0", 8001, 8001), bound("::", 8001, 8001),
			bound("0.0.0.0", 8002, 8002), bound("::", 8002, 8002), bound("127.0.0.1", 9000, 90), exposed(81, "tcp")},
			"81/tcp, 0.0.0.0:8000-8002->8000-8002/tcp, [::]:8000-8002->8000-8002/tcp, 127.0.0.1:9000->90/tcp"},
	} {
		if got := displayPorts(c.ports); got != c.want {
			t.Errorf("displayPorts(%v) = %q, want %q", c.ports, got, c.want)
		}
	}
}
