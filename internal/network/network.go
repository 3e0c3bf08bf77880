// Package network gives containers their networks, as dockerd's bridge
// driver does: a Linux bridge per network with an address pool, a veth
// pair per container endpoint, NAT and published ports in a packet filter
// table of the engine's own, and names answered by the engine's DNS on
// user-defined networks. Everything is made from the daemon itself, with
// netlink and nftables (no helper process per container: docs/network.md).
//
// On disk (Config.Root): networks/ID.json per network and
// leases/NETID/IP per endpoint, the address's lease and the endpoint's
// record at once. A lease file is made with O_EXCL before its address is
// used and removed when the endpoint goes, so no address is handed out
// twice, across crashes too; at start-up the daemon tells which
// containers still run and the leases of the others are dropped.
package network

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tent-project/tent/internal/errdefs"
)

// Drivers.
const (
	DriverBridge = "bridge"
	DriverHost   = "host"
	DriverNull   = "null"
)

// Names of the predefined networks.
const (
	NameBridge = "bridge"
	NameHost   = "host"
	NameNone   = "none"
)

// Options of the bridge driver that tent honours (docker's names).
const (
	OptBridgeName  = "com.docker.network.bridge.name"
	OptMTU         = "com.docker.network.driver.mtu"
	OptICC         = "com.docker.network.bridge.enable_icc"
	OptMasquerade  = "com.docker.network.bridge.enable_ip_masquerade"
	OptHostBinding = "com.docker.network.bridge.host_binding_ipv4"
)

// Network is a network's record.
type Network struct {
	ID       string
	Name     string
	Driver   string
	Created  time.Time
	Bridge   string       `json:",omitempty"` // the Linux bridge
	Subnet   netip.Prefix `json:",omitzero"`
	Gateway  netip.Addr   `json:",omitzero"`
	IPRange  netip.Prefix `json:",omitzero"` // where dynamic addresses come from
	Internal bool         `json:",omitempty"`
	// Attachable is kept as asked (swarm's notion; every local network
	// is attachable).
	Attachable bool              `json:",omitempty"`
	MTU        int               `json:",omitempty"`
	Options    map[string]string `json:",omitempty"`
	Labels     map[string]string `json:",omitempty"`
	// UserSubnet: the subnet was asked for (IPAM.Config in inspect).
	UserSubnet bool `json:",omitempty"`
	// Subnet6, Gateway6 and IPRange6 are its IPv6 twins, for a network
	// made with --ipv6 (zero otherwise); the IPv6 subnet is always the
	// user's.
	Subnet6  netip.Prefix `json:",omitzero"`
	Gateway6 netip.Addr   `json:",omitzero"`
	IPRange6 netip.Prefix `json:",omitzero"`
	// ImplicitGateway and ImplicitGateway6: the subnet was asked for, its
	// gateway was not (dockerd's inspect leaves such a gateway out).
	ImplicitGateway  bool `json:",omitempty"`
	ImplicitGateway6 bool `json:",omitempty"`
	// Aux are addresses of the subnets that no container gets
	// (--aux-address: name -> address, either family).
	Aux map[string]netip.Addr `json:",omitempty"`
	// NoICC: its containers do not reach each other (the option
	// com.docker.network.bridge.enable_icc=false); NoMasquerade: what
	// leaves it is not masqueraded (enable_ip_masquerade=false);
	// HostBinding: where ports published without an address go
	// (host_binding_ipv4; zero: 0.0.0.0 and ::).
	NoICC        bool       `json:",omitempty"`
	NoMasquerade bool       `json:",omitempty"`
	HostBinding  netip.Addr `json:",omitzero"`
	// Removing: its removal began (a crash then finishes it at start-up).
	Removing bool `json:",omitempty"`
}

// Predefined reports whether n is one of bridge, host and none.
func (n *Network) Predefined() bool {
	return n.Name == NameBridge || n.Name == NameHost || n.Name == NameNone
}

// IPv6 reports whether n gives its endpoints IPv6 addresses too.
func (n *Network) IPv6() bool { return n.Subnet6.IsValid() }

// UserDefined reports whether containers on n resolve each other by name
// (docker: user-defined bridge networks, not the default one).
func (n *Network) UserDefined() bool { return n.Driver == DriverBridge && n.Name != NameBridge }

// PortMapping is one published port of an endpoint.
type PortMapping struct {
	Proto         string     // tcp, udp, sctp
	ContainerPort uint16     //
	HostIP        netip.Addr `json:",omitzero"` // unset: every address
	HostPort      uint16
	// HostPortEnd: HostPort is the first of a range, any free one of
	// which will do (-p 8000-8010:80); 0: HostPort only.
	HostPortEnd uint16 `json:",omitempty"`
}

// Endpoint is a container's attachment to a network.
type Endpoint struct {
	ID        string
	Network   string   // its ID
	Container string   // its ID
	Name      string   // the container's name
	Aliases   []string `json:",omitempty"`
	IP        netip.Addr
	IP6       netip.Addr `json:",omitzero"` // on a network with IPv6
	MAC       string
	Iface     string // in the container: eth0, eth1...
	HostVeth  string
	Ports     []PortMapping `json:",omitempty"`
	// Gateway: the container's default route goes through this network.
	Gateway bool `json:",omitempty"`
	// DNS: where the engine's DNS server forwards this container's
	// questions about other names (--dns); nil: the host's resolvers.
	DNS []string `json:",omitempty"`
	// Links: the linked containers' ports it may reach with icc off.
	Links []LinkedPort `json:",omitempty"`

	lease *leaseWrite // its lease file being written (Allocate)
}

// Config configures a Manager.
type Config struct {
	Root string // networks/ and leases/ go here
	// Bridge is the default network's Linux bridge ("tent0").
	Bridge string
	// BIP is the default bridge's address and prefix (--bip); zero: the
	// first pool subnet that collides with no route of the host.
	BIP netip.Prefix
	// FixedCIDR is the default bridge's range of addresses for
	// containers (--fixed-cidr); zero: its whole subnet.
	FixedCIDR netip.Prefix
	// FixedCIDRv6 is the default bridge's IPv6 subnet (--ipv6
	// --fixed-cidr-v6); zero: the default bridge has IPv4 alone.
	FixedCIDRv6 netip.Prefix
	// NoICC, NoMasquerade and HostBinding are the default bridge's
	// (--icc=false, --ip-masq=false, --ip), as a network's options.
	NoICC, NoMasquerade bool
	HostBinding         netip.Addr
	// Pools are where networks without a subnet get theirs
	// (--default-address-pool); nil: docker's.
	Pools []Pool
	// Table is the name of the engine's nftables table.
	Table string
	MTU   int
	Log   *slog.Logger
}

// TableFor is the nftables table of a daemon whose default bridge is
// bridge: "tent" for tent0, else one of its own, so that two daemons on
// one host keep apart.
func TableFor(bridge string) string {
	if bridge == "" || bridge == "tent0" {
		return "tent"
	}
	b := []byte("tent_" + bridge)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_') {
			b[i] = '_'
		}
	}
	return string(b)
}

// Pool is a base range cut into subnets of Size bits.
type Pool struct {
	Base netip.Prefix
	Size int
}

// DefaultPools are docker's default address pools.
var DefaultPools = func() []Pool {
	var out []Pool
	for i := 17; i <= 31; i++ {
		out = append(out, Pool{netip.PrefixFrom(netip.AddrFrom4([4]byte{172, byte(i), 0, 0}), 16), 16})
	}
	return append(out, Pool{netip.MustParsePrefix("192.168.0.0/16"), 20})
}()

// ErrNotFound and the others are the errors of this package, in the
// engine's classes.
var errNoSuchNetwork = errdefs.ErrNotFound

// Manager owns the networks and their endpoints.
type Manager struct {
	cfg Config
	log *slog.Logger
	dns *dnsServer

	mu        sync.Mutex
	nets      map[string]*Network             // by ID
	endpoints map[string]map[string]*Endpoint // network ID -> container ID -> endpoint
	ipNext    map[string]netip.Addr           // where a network's next search starts (IPv4, IPv6: ipNext6)
	ipNext6   map[string]netip.Addr
	proxies   map[string][]*portProxy // by endpoint ID: its IPv6 bindings (ports.go)
	writes    sync.WaitGroup          // lease files being written
}

func (m *Manager) netDir() string   { return filepath.Join(m.cfg.Root, "networks") }
func (m *Manager) leaseDir() string { return filepath.Join(m.cfg.Root, "leases") }

// Open loads the networks, makes the predefined ones and sets up the
// data path of each (bridges, the filter table). Containers' leases are
// kept until Reconcile says which containers still run.
func Open(cfg Config) (*Manager, error) {
	if cfg.Bridge == "" {
		cfg.Bridge = "tent0"
	}
	if cfg.Table == "" {
		cfg.Table = "tent"
	}
	if cfg.Pools == nil {
		cfg.Pools = DefaultPools
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	m := &Manager{cfg: cfg, log: cfg.Log, nets: map[string]*Network{}, endpoints: map[string]map[string]*Endpoint{},
		ipNext: map[string]netip.Addr{}, ipNext6: map[string]netip.Addr{}, proxies: map[string][]*portProxy{}}
	for _, d := range []string{m.netDir(), m.leaseDir()} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	if err := m.load(); err != nil {
		return nil, err
	}
	for _, n := range m.nets {
		if n.Removing {
			if err := m.finishRemove(n); err != nil {
				m.log.Warn("finish network removal", "network", n.Name, "err", err)
			}
		}
	}
	if err := m.predefine(); err != nil {
		return nil, err
	}
	for _, n := range m.nets {
		if n.Driver == DriverBridge {
			if err := ensureBridge(n); err != nil {
				return nil, fmt.Errorf("network %s: %w", n.Name, err)
			}
		}
	}
	if err := m.syncRules(); err != nil {
		return nil, err
	}
	m.dns = newDNSServer(m)
	for _, n := range m.nets {
		if n.UserDefined() {
			m.dns.listen(n)
		}
	}
	return m, nil
}

// Close stops the DNS server and the IPv6 bindings' relays and waits for
// lease files being written; the rest of the data path stays
// (containers outlive the daemon; a daemon started again relays again).
func (m *Manager) Close() {
	m.dns.close()
	m.mu.Lock()
	for _, xs := range m.proxies {
		closeProxies(xs)
	}
	clear(m.proxies)
	m.mu.Unlock()
	m.writes.Wait()
}

func (m *Manager) load() error {
	ents, err := os.ReadDir(m.netDir())
	if err != nil {
		return err
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(m.netDir(), e.Name()))
		if err != nil {
			return err
		}
		var n Network
		if err := json.Unmarshal(b, &n); err != nil {
			m.log.Warn("unreadable network record", "file", e.Name(), "err", err)
			continue
		}
		m.nets[n.ID] = &n
		m.endpoints[n.ID] = map[string]*Endpoint{}
		leases, _ := os.ReadDir(filepath.Join(m.leaseDir(), n.ID))
		for _, l := range leases {
			p := filepath.Join(m.leaseDir(), n.ID, l.Name())
			var ep Endpoint
			if b, err := os.ReadFile(p); err != nil || json.Unmarshal(b, &ep) != nil {
				os.Remove(p) // made but not written: never used
				continue
			}
			m.endpoints[n.ID][ep.Container] = &ep
		}
	}
	return nil
}

func (m *Manager) save(n *Network) error {
	b, err := json.Marshal(n)
	if err != nil {
		return err
	}
	p := filepath.Join(m.netDir(), n.ID+".json")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, p)
}

func (m *Manager) predefine() error {
	have := map[string]*Network{}
	for _, n := range m.nets {
		have[n.Name] = n
	}
	for _, p := range []struct{ name, driver string }{{NameBridge, DriverBridge}, {NameHost, DriverHost}, {NameNone, DriverNull}} {
		if n := have[p.name]; n != nil {
			if p.driver == DriverBridge {
				if err := m.resettleBridge(n); err != nil {
					return err
				}
			}
			continue
		}
		n := &Network{ID: newID(), Name: p.name, Driver: p.driver, Created: time.Now().UTC()}
		if p.driver == DriverBridge {
			if err := m.bridgeSettings(n); err != nil {
				return err
			}
		}
		if err := m.save(n); err != nil {
			return err
		}
		m.nets[n.ID], m.endpoints[n.ID] = n, map[string]*Endpoint{}
	}
	return nil
}

// bridgeSettings gives the default bridge the daemon's settings: its
// Linux bridge and MTU, its subnet (--bip, else the one it had unless
// that was an earlier --bip's, else a free pool subnet), --fixed-cidr,
// and IPv6 (--ipv6 --fixed-cidr-v6: the subnet's first address is the
// gateway, left out of inspect as by dockerd 20.10).
func (m *Manager) bridgeSettings(n *Network) error {
	n.Bridge, n.MTU = m.cfg.Bridge, m.cfg.MTU
	n.NoICC, n.NoMasquerade, n.HostBinding = m.cfg.NoICC, m.cfg.NoMasquerade, m.cfg.HostBinding
	hostBinding := "0.0.0.0"
	if n.HostBinding.IsValid() {
		hostBinding = n.HostBinding.String()
	}
	mtu := n.MTU
	if mtu == 0 {
		mtu = 1500 // the kernel's, which dockerd shows
	}
	n.Options = map[string]string{OptBridgeName: m.cfg.Bridge, "com.docker.network.bridge.default_bridge": "true",
		OptICC: strconv.FormatBool(!n.NoICC), OptMasquerade: strconv.FormatBool(!n.NoMasquerade), OptHostBinding: hostBinding,
		OptMTU: strconv.Itoa(mtu)}
	switch {
	case m.cfg.BIP.IsValid():
		n.Subnet, n.Gateway, n.UserSubnet = m.cfg.BIP.Masked(), m.cfg.BIP.Addr(), true
	case !n.Subnet.IsValid() || n.UserSubnet:
		sub, err := m.freeSubnet()
		if err != nil {
			return err
		}
		n.Subnet, n.Gateway, n.UserSubnet = sub, sub.Addr().Next(), false
	}
	n.IPRange = m.cfg.FixedCIDR
	if r := n.IPRange; r.IsValid() && (r.Bits() < n.Subnet.Bits() || !n.Subnet.Contains(r.Addr())) {
		return fmt.Errorf("--fixed-cidr %s is not a range of the default bridge's subnet %s", r, n.Subnet)
	}
	n.Subnet6, n.Gateway6, n.ImplicitGateway6 = m.cfg.FixedCIDRv6, netip.Addr{}, false
	if n.Subnet6.IsValid() {
		n.Gateway6, n.ImplicitGateway6 = n.Subnet6.Addr().Next(), true
	}
	return nil
}

// resettleBridge brings the default bridge of an earlier start to the
// daemon's settings, as dockerd makes its default bridge anew at each
// start; while containers of the last daemon still use it, it keeps
// what they were given (a warning says so).
func (m *Manager) resettleBridge(n *Network) error {
	want := *n
	if err := m.bridgeSettings(&want); err != nil {
		return err
	}
	if want.Bridge == n.Bridge && want.MTU == n.MTU && want.Subnet == n.Subnet && want.Gateway == n.Gateway &&
		want.IPRange == n.IPRange && want.Subnet6 == n.Subnet6 && want.Gateway6 == n.Gateway6 {
		// What needs no new address applies at once: icc, masquerade
		// and the ports' address are rules and allocations, the
		// options what inspect shows.
		if want.NoICC != n.NoICC || want.NoMasquerade != n.NoMasquerade || want.HostBinding != n.HostBinding || !maps.Equal(want.Options, n.Options) {
			*n = want
			return m.save(n)
		}
		return nil
	}
	if len(m.endpoints[n.ID]) > 0 {
		m.log.Warn("the default bridge keeps its settings while containers of the last start use it; restart the daemon once they are gone to apply the new ones",
			"bridge", n.Bridge, "subnet", n.Subnet, "ipv6", n.Subnet6)
		return nil
	}
	dropAddrs(n)
	*n = want
	return m.save(n)
}

// Get finds a network by ID, ID prefix or name, as dockerd: an exact ID,
// then an exact name, then a unique ID prefix.
func (m *Manager) Get(ref string) (*Network, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n, err := m.get(ref)
	if err != nil {
		return nil, err
	}
	c := *n
	return &c, nil
}

func (m *Manager) get(ref string) (*Network, error) {
	if ref == "" {
		return nil, fmt.Errorf("network name cannot be empty: %w", errdefs.ErrInvalidArgument)
	}
	if n, ok := m.nets[ref]; ok && !n.Removing {
		return n, nil
	}
	for _, n := range m.nets {
		if n.Name == ref && !n.Removing {
			return n, nil
		}
	}
	var found *Network
	for id, n := range m.nets {
		if strings.HasPrefix(id, ref) && !n.Removing {
			if found != nil {
				return nil, fmt.Errorf("network %s is ambiguous (%d matches found based on ID prefix): %w", ref, 2, errdefs.ErrInvalidArgument)
			}
			found = n
		}
	}
	if found == nil {
		return nil, fmt.Errorf("network %s not found: %w", ref, errNoSuchNetwork)
	}
	return found, nil
}

// List returns every network, oldest first (the predefined ones first).
func (m *Manager) List() []*Network {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*Network
	for _, n := range m.nets {
		if !n.Removing {
			c := *n
			out = append(out, &c)
		}
	}
	slices.SortFunc(out, func(a, b *Network) int { return a.Created.Compare(b.Created) })
	return out
}

// Endpoints returns the endpoints on a network, by container ID.
func (m *Manager) Endpoints(netID string) []Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []Endpoint
	for _, ep := range m.endpoints[netID] {
		out = append(out, *ep)
	}
	slices.SortFunc(out, func(a, b Endpoint) int { return strings.Compare(a.Container, b.Container) })
	return out
}

// ContainerEndpoints returns a container's endpoints by network ID.
func (m *Manager) ContainerEndpoints(containerID string) map[string]Endpoint {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Endpoint{}
	for id, eps := range m.endpoints {
		if ep, ok := eps[containerID]; ok {
			out[id] = *ep
		}
	}
	return out
}

// Reconcile drops the endpoints of containers that no longer run (their
// network namespaces are gone with them, and so their veths), puts the
// filter table in line with what is left and relays its IPv6 bindings.
func (m *Manager) Reconcile(running func(containerID string) bool) error {
	m.mu.Lock()
	var all []*Endpoint
	for _, eps := range m.endpoints {
		for _, ep := range eps {
			all = append(all, ep)
		}
	}
	m.mu.Unlock()
	// running is asked without m.mu: it takes the daemon's container
	// locks, under which the daemon calls the manager.
	var gone []*Endpoint
	for _, ep := range all {
		if !running(ep.Container) {
			gone = append(gone, ep)
		}
	}
	for _, ep := range gone {
		m.release(ep, false)
	}
	m.mu.Lock()
	m.resumeProxies()
	m.mu.Unlock()
	return m.syncRules()
}

func newID() string {
	b := make([]byte, 32)
	if _, err := randRead(b); err != nil {
		panic(err)
	}
	return fmt.Sprintf("%x", b)
}

// macFor is docker's classic MAC of an IPv4 address: 02:42 and the
// address's four bytes.
func macFor(ip netip.Addr) net.HardwareAddr {
	a := ip.As4()
	return net.HardwareAddr{0x02, 0x42, a[0], a[1], a[2], a[3]}
}
