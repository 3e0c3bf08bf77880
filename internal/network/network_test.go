package network

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/tent-project/tent/internal/testutil"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// newManager is a manager with a table, bridge and pool of its own, torn
// down (and checked gone) at the end.
func newManager(t *testing.T) *Manager {
	t.Helper()
	testutil.RequiresRoot(t)
	cfg := Config{Root: t.TempDir(), Bridge: "tnt-test0", Table: "tent_test",
		Pools: []Pool{{netip.MustParsePrefix("10.213.0.0/16"), 24}}}
	m, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		for _, n := range m.List() {
			if n.Driver == DriverBridge {
				deleteBridge(n)
			}
		}
		DeleteTable(cfg.Table)
		if TableExists(cfg.Table) {
			t.Errorf("table %s left", cfg.Table)
		}
	})
	return m
}

// sandbox is a process in a network namespace of its own, as a
// container's init.
func sandbox(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd.Process.Pid
}

// in runs busybox in pid's network namespace.
func in(t *testing.T, pid int, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(pid), "-n", testutil.Busybox(t)}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func attach(t *testing.T, m *Manager, netRef, name string, pid int) *Endpoint {
	t.Helper()
	ep, err := m.Allocate(netRef, EndpointOpts{Container: name + strings.Repeat("0", 64-len(name)), Name: name, Iface: "eth0", Gateway: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Wire(ep, pid); err != nil {
		t.Fatal(err)
	}
	return ep
}

func TestUserNetworkReachAndResolve(t *testing.T) {
	m := newManager(t)
	n, err := m.Create(CreateOpts{Name: "app"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Subnet.String() == "" || !netip.MustParsePrefix("10.213.0.0/16").Contains(n.Subnet.Addr()) {
		t.Fatalf("subnet %s not from the pool", n.Subnet)
	}
	p1, p2 := sandbox(t), sandbox(t)
	e1, e2 := attach(t, m, "app", "db", p1), attach(t, m, "app", "web", p2)
	if e1.IP == e2.IP {
		t.Fatalf("one address twice: %s", e1.IP)
	}
	if out, err := in(t, p1, "ping", "-c1", "-W2", e2.IP.String()); err != nil {
		t.Fatalf("db cannot reach web: %v\n%s", err, out)
	}
	out, err := in(t, p2, "nslookup", "db", n.Gateway.String())
	if err != nil || !strings.Contains(out, e1.IP.String()) {
		t.Fatalf("web cannot resolve db: %v\n%s", err, out)
	}
	if err := m.Remove("app"); err == nil || !strings.Contains(err.Error(), "active endpoints") {
		t.Fatalf("remove of a network in use: %v", err)
	}
	m.Release(e1.Container, n.ID)
	m.Release(e2.Container, n.ID)
	if err := m.Remove("app"); err != nil {
		t.Fatal(err)
	}
	if _, err := netlink.LinkByName(n.Bridge); err == nil {
		t.Errorf("bridge %s left", n.Bridge)
	}
}

func TestNetworksAreIsolated(t *testing.T) {
	m := newManager(t)
	for _, name := range []string{"a", "b"} {
		if _, err := m.Create(CreateOpts{Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	pa, pb := sandbox(t), sandbox(t)
	attach(t, m, "a", "x", pa)
	eb := attach(t, m, "b", "y", pb)
	if out, err := in(t, pa, "ping", "-c1", "-W1", eb.IP.String()); err == nil {
		t.Fatalf("a container on network a reached one on b:\n%s", out)
	}
}

func TestCreateRefusesBadInput(t *testing.T) {
	m := newManager(t)
	if _, err := m.Create(CreateOpts{Name: "one", Subnet: "10.214.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    CreateOpts
		want string
	}{
		{CreateOpts{Name: "one"}, "already exists"},
		{CreateOpts{Name: "two", Subnet: "10.214.0.0/25"}, "overlaps"},
		{CreateOpts{Name: "two", Subnet: "10.215.0.1/24"}, "host bits"},
		{CreateOpts{Name: "two", Subnet: "nonsense"}, "invalid subnet"},
		{CreateOpts{Name: "two", Subnet: "10.215.0.0/24", Gateway: "10.216.0.1"}, "invalid gateway"},
		{CreateOpts{Name: "two", Subnet: "10.215.0.0/24", IPRange: "10.215.1.0/28"}, "invalid IP range"},
		{CreateOpts{Name: "bridge"}, "pre-defined"},
		{CreateOpts{Name: "two", Driver: "overlay"}, "plugin not found"},
		{CreateOpts{Name: "bad name"}, "invalid network name"},
		{CreateOpts{Name: "two", IPv6: true}, "non-overlapping IPv6 address pool"},
		{CreateOpts{Name: "two", Subnet6: "fd00:9::/64"}, "an IPv6 subnet needs --ipv6"},
		{CreateOpts{Name: "two", IPv6: true, Subnet6: "10.9.0.0/24"}, "it must be an IPv6 CIDR"},
		{CreateOpts{Name: "two", IPv6: true, Subnet6: "fd00:9::1/64"}, "host bits"},
		{CreateOpts{Name: "two", IPv6: true, Subnet6: "fd00:9::/127"}, "no room"},
		{CreateOpts{Name: "two", IPv6: true, Subnet6: "fd00:9::/64", Gateway6: "fd00:8::1"}, "invalid gateway"},
		{CreateOpts{Name: "two", IPv6: true, Subnet6: "fd00:9::/64", IPRange6: "fd00:9::/48"}, "invalid IP range"},
		{CreateOpts{Name: "two", Subnet: "fd00:9::/64"}, "it must be an IPv4 CIDR"},
		{CreateOpts{Name: "two", Subnet: "10.215.0.0/24", Aux: map[string]string{"r": "10.216.0.2"}}, "no matching subnet for aux-address 10.216.0.2"},
		{CreateOpts{Name: "two", Subnet: "10.215.0.0/24", Aux: map[string]string{"r": "10.215.0.1"}}, "(r:10.215.0.1): Address already in use"},
		{CreateOpts{Name: "two", Subnet: "10.215.0.0/24", Aux: map[string]string{"r": "fd00:9::2"}}, "no matching subnet for aux-address fd00:9::2"},
	} {
		if _, err := m.Create(c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("create %+v: %v, want %q", c.o, err, c.want)
		}
	}
	if got := len(m.List()); got != 4 {
		t.Errorf("%d networks after refusals, want 4 (bridge, host, none, one)", got)
	}
}

// TestAuxAddresses: a network's auxiliary addresses go to no container,
// neither by the next free address nor by --ip.
func TestAuxAddresses(t *testing.T) {
	m := newManager(t)
	n, err := m.Create(CreateOpts{Name: "aux", Subnet: "10.218.0.0/24", Aux: map[string]string{"r1": "10.218.0.2", "r2": "10.218.0.3"}})
	if err != nil {
		t.Fatal(err)
	}
	if n.Aux["r1"].String() != "10.218.0.2" || len(n.Aux) != 2 {
		t.Errorf("the network's auxiliary addresses: %v", n.Aux)
	}
	ep, err := m.Allocate("aux", EndpointOpts{Container: strings.Repeat("a", 64), Name: "a", Iface: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if ep.IP.String() != "10.218.0.4" {
		t.Errorf("the first container's address %s, want 10.218.0.4 (.2 and .3 are auxiliary)", ep.IP)
	}
	if _, err := m.Allocate("aux", EndpointOpts{Container: strings.Repeat("b", 64), Name: "b", IP: netip.MustParseAddr("10.218.0.3")}); err == nil || !strings.Contains(err.Error(), "already in use") {
		t.Errorf("--ip of an auxiliary address: %v", err)
	}
	m.ReleaseAll(ep.Container)
}

func TestLeasesSurviveReopen(t *testing.T) {
	m := newManager(t)
	if _, err := m.Create(CreateOpts{Name: "app", Subnet: "10.217.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	ep, err := m.Allocate("app", EndpointOpts{Container: strings.Repeat("a", 64), Name: "a", Iface: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	m2, err := Open(m.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	ep2, err := m2.Allocate("app", EndpointOpts{Container: strings.Repeat("b", 64), Name: "b", Iface: "eth0"})
	if err != nil {
		t.Fatal(err)
	}
	if ep2.IP == ep.IP {
		t.Fatalf("address %s handed out twice across a restart", ep.IP)
	}
	if _, err := m2.Allocate("app", EndpointOpts{Container: strings.Repeat("c", 64), Name: "c", IP: ep.IP}); err == nil {
		t.Fatal("a leased address was given again by --ip")
	}
	m2.Reconcile(func(id string) bool { return id == ep2.Container })
	if got := m2.ContainerEndpoints(ep.Container); len(got) != 0 {
		t.Fatalf("endpoint of a container that does not run kept: %v", got)
	}
}

// TestIPv6Network: an IPv6 network gives each endpoint an IPv6 address
// too (the next free one, or the one asked); containers reach each other
// and the gateway over IPv6 and resolve each other's AAAA records, and
// another network's containers are kept off it over IPv6 as over IPv4.
func TestIPv6Network(t *testing.T) {
	m := newManager(t)
	n, err := m.Create(CreateOpts{Name: "six", IPv6: true, Subnet6: "fd00:5a::/64", IPRange6: "fd00:5a::100/120"})
	if err != nil {
		t.Fatal(err)
	}
	if n.Gateway6 != netip.MustParseAddr("fd00:5a::1") || !n.Subnet.IsValid() {
		t.Fatalf("network: %+v", n)
	}
	if _, err := m.Create(CreateOpts{Name: "six2", IPv6: true, Subnet6: "fd00:5a::/56"}); err == nil || !strings.Contains(err.Error(), "overlaps") {
		t.Errorf("an overlapping IPv6 subnet: %v", err)
	}
	other, err := m.Create(CreateOpts{Name: "other", IPv6: true, Subnet6: "fd00:5b::/64"})
	if err != nil {
		t.Fatal(err)
	}
	p1, p2, p3 := sandbox(t), sandbox(t), sandbox(t)
	e1 := attach(t, m, "six", "db", p1)
	e2, err := m.Allocate("six", EndpointOpts{Container: strings.Repeat("w", 64), Name: "web", Iface: "eth0", Gateway: true,
		IP6: netip.MustParseAddr("fd00:5a::99")})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Wire(e2, p2); err != nil {
		t.Fatal(err)
	}
	e3 := attach(t, m, "other", "spy", p3)
	if e1.IP6 != netip.MustParseAddr("fd00:5a::100") || e3.IP6 != netip.MustParseAddr("fd00:5b::2") {
		t.Errorf("IPv6 addresses: %s (range fd00:5a::100/120), %s", e1.IP6, e3.IP6)
	}
	if out, err := in(t, p1, "ping", "-6", "-c1", "-W2", e2.IP6.String()); err != nil {
		t.Fatalf("db cannot reach web over IPv6: %v\n%s", err, out)
	}
	if out, err := in(t, p2, "ping", "-6", "-c1", "-W2", n.Gateway6.String()); err != nil {
		t.Fatalf("web cannot reach the IPv6 gateway: %v\n%s", err, out)
	}
	out, err := in(t, p2, "nslookup", "-type=aaaa", "db", n.Gateway.String())
	if err != nil || !strings.Contains(out, e1.IP6.String()) {
		t.Fatalf("web cannot resolve db's IPv6 address: %v\n%s", err, out)
	}
	if out, err := in(t, p3, "ping", "-6", "-c1", "-W1", e1.IP6.String()); err == nil {
		t.Fatalf("a container on another network reached db over IPv6:\n%s", out)
	}
	if _, err := m.Allocate("six", EndpointOpts{Container: strings.Repeat("x", 64), Name: "x", IP6: e2.IP6}); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("an IPv6 address twice: %v", err)
	}
	if _, err := m.Allocate("bridge", EndpointOpts{Container: strings.Repeat("y", 64), Name: "y", IP6: netip.MustParseAddr("fd00:5a::5")}); err == nil || !strings.Contains(err.Error(), "no IPv6 subnet") {
		t.Errorf("an IPv6 address on a network without IPv6: %v", err)
	}
	for _, ep := range []*Endpoint{e1, e2} {
		m.Release(ep.Container, n.ID)
	}
	m.Release(e3.Container, other.ID)
	for _, name := range []string{"six", "other"} {
		if err := m.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
	c, _ := nftables.New()
	if _, err := c.ListTableOfFamily(m.cfg.Table, nftables.TableFamilyIPv6); err == nil {
		t.Error("the IPv6 table stayed after the last IPv6 network went")
	}
}

// TestNetworkOutgrowsABridge: past a bridge's ports, endpoints go on an
// overflow bridge of the same segment; all reach each other and the
// gateway, and removing the network removes every bridge.
func TestNetworkOutgrowsABridge(t *testing.T) {
	defer func(n int) { portsPerBridge = n }(portsPerBridge)
	portsPerBridge = 2
	m := newManager(t)
	n, err := m.Create(CreateOpts{Name: "big"})
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	var eps []*Endpoint
	for i := range 5 {
		p := sandbox(t)
		pids, eps = append(pids, p), append(eps, attach(t, m, "big", fmt.Sprintf("c%d", i), p))
	}
	if _, err := netlink.LinkByName(overflowName(n, 2)); err != nil {
		t.Fatalf("no second overflow bridge for 5 endpoints at 2 ports a bridge (one is the uplink): %v", err)
	}
	for _, e := range eps[1:] {
		if out, err := in(t, pids[0], "ping", "-c1", "-W2", e.IP.String()); err != nil {
			t.Fatalf("%s unreachable across overflow bridges: %v\n%s", e.IP, err, out)
		}
	}
	if out, err := in(t, pids[4], "ping", "-c1", "-W2", n.Gateway.String()); err != nil {
		t.Fatalf("gateway unreachable from an overflow bridge: %v\n%s", err, out)
	}
	for _, e := range eps {
		m.Release(e.Container, n.ID)
	}
	if err := m.Remove("big"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{n.Bridge, overflowName(n, 1), uplinkName(n, 1), overflowName(n, 2)} {
		if _, err := netlink.LinkByName(name); err == nil {
			t.Errorf("%s left", name)
		}
	}
}

// BenchmarkEndpoint: what a container start and end cost the network:
// allocate, wire into a fresh namespace, release.
func BenchmarkEndpoint(b *testing.B) {
	testutil.RequiresRoot(b)
	cfg := Config{Root: b.TempDir(), Bridge: "tnt-bench0", Table: "tent_bench",
		Pools: []Pool{{netip.MustParsePrefix("10.214.0.0/16"), 24}}}
	m, err := Open(cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { m.Close(); deleteLink(cfg.Bridge); DeleteTable(cfg.Table) }()
	var alloc, wireT, rel time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		cmd := exec.Command("sleep", "60")
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		t0 := time.Now()
		ep, err := m.Allocate(NameBridge, EndpointOpts{Container: fmt.Sprintf("%064d", i), Name: "c", Iface: "eth0", Gateway: true})
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := m.Wire(ep, cmd.Process.Pid); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		b.StopTimer()
		cmd.Process.Kill() // the container ends, then the daemon releases
		cmd.Wait()
		b.StartTimer()
		t3 := time.Now()
		m.Release(ep.Container, ep.Network)
		alloc, wireT, rel = alloc+t1.Sub(t0), wireT+t2.Sub(t1), rel+time.Since(t3)
	}
	n := time.Duration(b.N)
	b.ReportMetric(float64((alloc / n).Microseconds()), "alloc-µs")
	b.ReportMetric(float64((wireT / n).Microseconds()), "wire-µs")
	b.ReportMetric(float64((rel / n).Microseconds()), "release-µs")
}

// TestBesideDockersDropPolicy: a dockerd with its iptables sets the
// FORWARD policy of iptables-nft's filter table to DROP; the engine's
// accept rules in DOCKER-USER keep its networks' forwarded traffic
// flowing, and go with the engine's table.
func TestBesideDockersDropPolicy(t *testing.T) {
	testutil.RequiresRoot(t)
	c, err := nftables.New()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ListTableOfFamily("filter", nftables.TableFamilyIPv4); err == nil {
		t.Skip("the host has an iptables filter table of its own: not touching it")
	}
	// docker's layout: FORWARD (policy drop) jumps to DOCKER-USER first.
	filter := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "filter"})
	drop := nftables.ChainPolicyDrop
	fwd := c.AddChain(&nftables.Chain{Name: "FORWARD", Table: filter, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &drop})
	user := c.AddChain(&nftables.Chain{Name: "DOCKER-USER", Table: filter})
	c.AddRule(&nftables.Rule{Table: filter, Chain: fwd, Exprs: []expr.Any{&expr.Verdict{Kind: expr.VerdictJump, Chain: user.Name}}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.DelTable(filter); c.Flush() })

	// A host beyond this one: a namespace routed through a veth.
	outside := sandbox(t)
	ns, err := netns.GetFromPid(outside)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	attrs := netlink.NewLinkAttrs()
	attrs.Name, attrs.Flags = "tnt-out0", net.FlagUp
	veth := &netlink.Veth{LinkAttrs: attrs, PeerName: "eth0", PeerNamespace: netlink.NsFd(int(ns))}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netlink.LinkDel(veth) })
	addr, _ := netlink.ParseAddr("10.250.0.1/30")
	if err := netlink.AddrAdd(veth, addr); err != nil {
		t.Fatal(err)
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	peer, err := h.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	paddr, _ := netlink.ParseAddr("10.250.0.2/30")
	if err := h.AddrAdd(peer, paddr); err != nil {
		t.Fatal(err)
	}
	if err := h.LinkSetUp(peer); err != nil {
		t.Fatal(err)
	}

	m := newManager(t)
	if _, err := m.Create(CreateOpts{Name: "app"}); err != nil {
		t.Fatal(err)
	}
	p := sandbox(t)
	attach(t, m, "app", "web", p)
	if out, err := in(t, p, "ping", "-c1", "-W2", "10.250.0.2"); err != nil {
		t.Fatalf("forwarded traffic dropped beside docker's policy: %v\n%s", err, out)
	}
	// Without the engine's rules the same packet goes nowhere: the test
	// can fail.
	if err := syncDockerUser(m.cfg.Table, nil); err != nil {
		t.Fatal(err)
	}
	if out, err := in(t, p, "ping", "-c1", "-W1", "10.250.0.2"); err == nil {
		t.Fatalf("reached the outside with no accept rules: the test proves nothing\n%s", out)
	}
	m.syncRules()
	DeleteTable(m.cfg.Table)
	rules, _ := c.GetRules(filter, user)
	if len(rules) != 0 {
		t.Errorf("%d rules left in DOCKER-USER after the engine's table went", len(rules))
	}
}

// A segment of 2,000 ports gets a backlog and a neighbour table for
// them; raising never lowers what the host has.
func TestKernelLimits(t *testing.T) {
	l := kernelLimits(2000)
	if l["net/core/netdev_max_backlog"] < 2000 || l["net/ipv4/neigh/default/gc_thresh3"] < 4000 || l["net/ipv4/neigh/default/gc_thresh2"] >= l["net/ipv4/neigh/default/gc_thresh3"] {
		t.Errorf("limits for 2,000 ports: %v", l)
	}
	testutil.RequiresRoot(t)
	before := map[string]string{}
	for path := range l {
		b, _ := os.ReadFile("/proc/sys/" + path)
		before[path] = string(b)
	}
	raiseKernelLimits(1) // below any host's defaults
	for path, was := range before {
		if b, _ := os.ReadFile("/proc/sys/" + path); string(b) != was {
			t.Errorf("%s: %q, was %q: lowered", path, b, was)
		}
	}
}
