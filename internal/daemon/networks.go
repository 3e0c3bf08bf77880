package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/netsvc"
	"github.com/tent-project/tent/internal/network"
)

// A container's networks: the one its network mode names (bridge for
// "default") and those connected since, by name, in record.Networks
// (what was asked: aliases, address, MAC). While it runs its endpoints
// are the network manager's (internal/network), which keeps them on disk:
// they are the truth for a running container, the record for a stopped
// one.

// modeNetwork is the network a network mode names; "": none, host or
// another container's.
func modeNetwork(mode container.NetworkMode) string {
	switch {
	case mode == "" || mode == "default":
		return network.NameBridge
	case mode.IsNone() || mode.IsHost() || mode.IsContainer():
		return ""
	}
	return string(mode)
}

// createNetworks checks a new container's network settings as dockerd
// does and returns what its record keeps of them, and dockerd's warnings.
func (d *Daemon) createNetworks(cfg *container.Config, hc *container.HostConfig, nc *netapi.NetworkingConfig) (_ map[string]*netapi.EndpointSettings, warnings []string, err error) {
	warnings = []string{}
	out, err := d.checkNetworks(cfg, hc, nc, &warnings)
	return out, warnings, err
}

func (d *Daemon) checkNetworks(cfg *container.Config, hc *container.HostConfig, nc *netapi.NetworkingConfig, warnings *[]string) (map[string]*netapi.EndpointSettings, error) {
	mode := hc.NetworkMode
	if mode.IsContainer() {
		if mode.ConnectedContainer() == "" {
			return nil, fmt.Errorf("invalid network mode: %s: %w", mode, errdefs.ErrInvalidArgument)
		}
		if len(hc.PortBindings) > 0 || hc.PublishAllPorts {
			return nil, fmt.Errorf("conflicting options: port publishing and the container type network mode: %w", errdefs.ErrInvalidArgument)
		}
		if len(hc.DNS) > 0 || len(hc.DNSSearch) > 0 || len(hc.DNSOptions) > 0 {
			return nil, fmt.Errorf("conflicting options: dns and the network mode: %w", errdefs.ErrInvalidArgument)
		}
		if len(hc.ExtraHosts) > 0 {
			return nil, fmt.Errorf("conflicting options: custom host-to-IP mapping and the network mode: %w", errdefs.ErrInvalidArgument)
		}
		if _, err := d.get(mode.ConnectedContainer()); err != nil {
			return nil, err
		}
	}
	if mode.IsHost() && (len(hc.PortBindings) > 0 || hc.PublishAllPorts) {
		// dockerd discards them, and says so.
		*warnings = append(*warnings, "Published ports are discarded when using host network mode")
	}
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() {
		hc.PortBindings, hc.PublishAllPorts = nil, false
	}
	if _, err := portMappings(cfg, hc); err != nil {
		return nil, err
	}
	if len(hc.Links) > 0 && mode != "" && mode != "default" && mode != network.NameBridge && modeNetwork(mode) == "" {
		return nil, fmt.Errorf("conflicting options: links and the network mode %s: %w", mode, errdefs.ErrInvalidArgument)
	}
	if _, err := d.extraHosts(hc); err != nil {
		return nil, err
	}
	out := map[string]*netapi.EndpointSettings{}
	main := modeNetwork(mode)
	asked := map[string]*netapi.EndpointSettings{}
	if nc != nil {
		for name, es := range nc.EndpointsConfig {
			if name == "default" { // the docker CLI names the network mode
				name = network.NameBridge
			}
			asked[name] = es
		}
	}
	if main != "" {
		if _, ok := asked[main]; !ok {
			asked = mapsWith(asked, main, &netapi.EndpointSettings{})
		}
	} else if len(asked) > 0 && !(len(asked) == 1 && asked[string(mode)] != nil) {
		return nil, fmt.Errorf("container cannot be connected to other networks with network mode %s: %w", mode, errdefs.ErrInvalidArgument)
	}
	for name, es := range asked {
		if main == "" {
			break
		}
		if es == nil {
			es = &netapi.EndpointSettings{}
		}
		n, err := d.net.Get(name)
		if errdefs.IsNotFound(err) {
			// dockerd looks the network up at start: a 404 from create
			// would make the docker CLI pull the image.
			out[name] = &netapi.EndpointSettings{Aliases: es.Aliases, IPAMConfig: es.IPAMConfig, MacAddress: es.MacAddress}
			continue
		}
		if err != nil {
			return nil, err
		}
		keep, err := endpointConfig(n, es)
		if err != nil {
			return nil, err
		}
		out[n.Name] = keep
	}
	return out, nil
}

func mapsWith[V any](m map[string]V, k string, v V) map[string]V {
	out := map[string]V{k: v}
	for key, val := range m {
		out[key] = val
	}
	return out
}

// endpointConfig checks what a container asks of network n, as dockerd
// does at create and connect, and keeps it.
func endpointConfig(n *network.Network, es *netapi.EndpointSettings) (*netapi.EndpointSettings, error) {
	keep := &netapi.EndpointSettings{NetworkID: n.ID, Aliases: es.Aliases, MacAddress: es.MacAddress, Links: es.Links}
	if n.Driver != network.DriverBridge {
		if len(es.Aliases) > 0 || es.IPAMConfig != nil {
			return nil, fmt.Errorf("network-scoped aliases and addresses are only supported for user-defined networks: %w", errdefs.ErrInvalidArgument)
		}
		return keep, nil
	}
	if len(es.Aliases) > 0 && !n.UserDefined() {
		return nil, fmt.Errorf("network-scoped alias is supported only for containers in user defined networks: %w", errdefs.ErrInvalidArgument)
	}
	if ipam := es.IPAMConfig; ipam != nil && ipam.IPv4Address.IsValid() {
		ip := ipam.IPv4Address
		if !n.UserDefined() {
			return nil, fmt.Errorf("user specified IP address is supported on user defined networks only: %w", errdefs.ErrInvalidArgument)
		}
		if !n.UserSubnet {
			return nil, fmt.Errorf("user specified IP address is supported only when connecting to networks with user configured subnets: %w", errdefs.ErrInvalidArgument)
		}
		if !ip.Is4() || !n.Subnet.Contains(ip) {
			return nil, fmt.Errorf("no configured subnet or ip-range contain the IP address %s: %w", ip, errdefs.ErrInvalidArgument)
		}
		keep.IPAMConfig = &netapi.EndpointIPAMConfig{IPv4Address: ip}
	}
	if ipam := es.IPAMConfig; ipam != nil && ipam.IPv6Address.IsValid() {
		return nil, fmt.Errorf("IPv6 addresses are not supported yet: %w", errdefs.ErrNotImplemented)
	}
	return keep, nil
}

// portMappings are the ports a container publishes: its bindings and,
// with -P, every exposed port not bound (a host port of 0: any free one).
func portMappings(cfg *container.Config, hc *container.HostConfig) ([]network.PortMapping, error) {
	var out []network.PortMapping
	ports := make([]netapi.Port, 0, len(hc.PortBindings))
	for p := range hc.PortBindings {
		ports = append(ports, p)
	}
	if hc.PublishAllPorts {
		for p := range cfg.ExposedPorts {
			if _, ok := hc.PortBindings[p]; !ok {
				ports = append(ports, p)
			}
		}
	}
	slices.SortFunc(ports, func(a, b netapi.Port) int { return strings.Compare(a.String(), b.String()) })
	for _, p := range ports {
		if p.Proto() != netapi.TCP && p.Proto() != netapi.UDP && p.Proto() != netapi.SCTP {
			return nil, fmt.Errorf("invalid proto: %s: %w", p.Proto(), errdefs.ErrInvalidArgument)
		}
		bindings := hc.PortBindings[p]
		if len(bindings) == 0 {
			bindings = []netapi.PortBinding{{}}
		}
		for _, b := range bindings {
			m := network.PortMapping{Proto: string(p.Proto()), ContainerPort: p.Num(), HostIP: b.HostIP}
			if b.HostIP.IsValid() && !b.HostIP.Is4() {
				if b.HostIP.IsUnspecified() {
					continue // "::": the IPv6 twin of 0.0.0.0, which the IPv4 binding covers
				}
				return nil, fmt.Errorf("publishing on IPv6 address %s is not supported yet: %w", b.HostIP, errdefs.ErrNotImplemented)
			}
			if b.HostPort != "" {
				lo, hi, ok := strings.Cut(b.HostPort, "-")
				n, err := strconv.ParseUint(lo, 10, 16)
				if err != nil {
					return nil, fmt.Errorf("invalid host port: %s: %w", b.HostPort, errdefs.ErrInvalidArgument)
				}
				m.HostPort = uint16(n)
				if ok {
					end, err := strconv.ParseUint(hi, 10, 16)
					if err != nil || end < n {
						return nil, fmt.Errorf("invalid host port range: %s: %w", b.HostPort, errdefs.ErrInvalidArgument)
					}
					m.HostPortEnd = uint16(end)
				}
			}
			out = append(out, m)
		}
	}
	return out, nil
}

// extraHosts are the --add-host entries as (name, address) pairs, with
// host-gateway replaced by the default bridge's gateway (docker's
// default host-gateway address).
func (d *Daemon) extraHosts(hc *container.HostConfig) ([][2]string, error) {
	var out [][2]string
	for _, h := range hc.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			if name, ip, ok = strings.Cut(h, "="); !ok {
				return nil, fmt.Errorf("invalid extra host %q: %w", h, errdefs.ErrInvalidArgument)
			}
		}
		if ip == "host-gateway" {
			br, err := d.net.Get(network.NameBridge)
			if err != nil {
				return nil, err
			}
			ip = br.Gateway.String()
		} else if _, err := netip.ParseAddr(ip); err != nil {
			return nil, fmt.Errorf("invalid IP address in add-host: %q: %w", ip, errdefs.ErrInvalidArgument)
		}
		out = append(out, [2]string{name, ip})
	}
	return out, nil
}

// networkNames are a container's networks in the order they are plugged
// in: its network mode's first (eth0, and the default route), then the
// others by name.
func networkNames(c *ctr) []string {
	main := modeNetwork(c.HostConfig.NetworkMode)
	var names []string
	for name := range c.Networks {
		if name != main {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	if _, ok := c.Networks[main]; ok {
		names = append([]string{main}, names...)
	}
	return names
}

// allocateNetworks gives a container about to start its endpoints
// (addresses and host ports), before its /etc/hosts is written; c.mu is
// held. On error none is kept. saved are the addresses of a checkpoint
// being restored, by network ID: its guest has them already.
func (d *Daemon) allocateNetworks(c *ctr, saved map[string]savedEndpoint) (eps []*network.Endpoint, err error) {
	defer func() {
		if err != nil {
			d.net.ReleaseAll(c.ID)
			eps = nil
		}
	}()
	ports, err := portMappings(c.Config, c.HostConfig)
	if err != nil {
		return nil, err
	}
	if main := modeNetwork(c.HostConfig.NetworkMode); main != "" && c.Networks[main] == nil {
		c.Networks = mapsWith(c.Networks, main, &netapi.EndpointSettings{}) // a record from before networks
	}
	for i, name := range networkNames(c) {
		es := c.Networks[name]
		ref := es.NetworkID
		if ref == "" {
			ref = name
		}
		o := network.EndpointOpts{Container: c.ID, Name: c.Name, Aliases: es.Aliases, Iface: "eth" + strconv.Itoa(i), Gateway: i == 0}
		if es.IPAMConfig != nil {
			o.IP = es.IPAMConfig.IPv4Address
		}
		if len(es.MacAddress) > 0 {
			o.MAC = es.MacAddress.String()
		}
		if i == 0 {
			o.Ports = ports
		}
		if n, err := d.net.Get(ref); err == nil && saved != nil {
			if s, ok := saved[n.ID]; ok {
				o.IP, o.MAC, o.Restored = s.IP, s.MAC, true
			}
		}
		for _, ip := range c.HostConfig.DNS {
			o.DNS = append(o.DNS, ip.String())
		}
		ep, err := d.net.Allocate(ref, o)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// wireNetworks plugs the endpoints into the created task's namespace.
func (d *Daemon) wireNetworks(c *ctr, eps []*network.Endpoint, pid int) error {
	for _, ep := range eps {
		if err := d.net.Wire(ep, pid); err != nil {
			return err
		}
	}
	for _, ep := range eps {
		d.NetworkEvent(ep.Network, events.ActionConnect, c.ID)
	}
	return nil
}

// releaseNetworks frees a container's endpoints once it has stopped.
func (d *Daemon) releaseNetworks(c *ctr) {
	for id := range d.net.ContainerEndpoints(c.ID) {
		d.net.Release(c.ID, id)
		d.NetworkEvent(id, events.ActionDisconnect, c.ID)
	}
}

// networkSettings are a container's NetworkSettings in inspect; c.mu is
// held.
func (d *Daemon) networkSettings(c *ctr) *container.NetworkSettings {
	s := &container.NetworkSettings{Ports: netapi.PortMap{}, Networks: map[string]*netapi.EndpointSettings{}}
	live := map[string]network.Endpoint{}
	mode := c.HostConfig.NetworkMode
	if c.running() {
		live = d.net.ContainerEndpoints(c.ID)
		s.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", c.State.Pid)
	}
	if !c.State.StartedAt.IsZero() {
		s.SandboxID = c.ID // the container's own namespace; dockerd keeps it once made
	}
	if !mode.IsNone() && !mode.IsHost() && !mode.IsContainer() { // as dockerd: ports are an interface's
		for p := range c.Config.ExposedPorts {
			s.Ports[p] = nil
		}
	}
	for name, es := range c.Networks {
		out := *es
		out.Aliases = slices.Clone(es.Aliases)
		if n, err := d.net.Get(es.NetworkID); err == nil {
			if ep, ok := live[n.ID]; ok {
				out.EndpointID, out.IPAddress, out.IPPrefixLen, out.DNSNames = ep.ID, ep.IP, n.Subnet.Bits(), nil
				if ep.Gateway {
					out.Gateway = n.Gateway
				}
				if hw, err := netsvc.ParseMAC(ep.MAC); err == nil {
					out.MacAddress = hw
				}
				if n.UserDefined() {
					out.DNSNames = ep.DNSNames()
				}
				for _, p := range ep.Ports {
					port, _ := netapi.PortFrom(p.ContainerPort, netapi.IPProtocol(p.Proto))
					hostIP := p.HostIP
					if !hostIP.IsValid() {
						hostIP = netip.IPv4Unspecified()
					}
					s.Ports[port] = append(s.Ports[port], netapi.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(p.HostPort))})
				}
			}
		}
		s.Networks[name] = &out
	}
	// As dockerd: a container of --network none or host is an endpoint of
	// that predefined network once started, with an endpoint while it runs.
	if (mode.IsNone() || mode.IsHost()) && len(s.Networks) == 0 {
		ep := &netapi.EndpointSettings{}
		if n, err := d.net.Get(string(mode)); err == nil && !c.State.StartedAt.IsZero() {
			ep.NetworkID = n.ID
			if c.running() {
				sum := sha256.Sum256([]byte(c.ID + "/" + n.ID))
				ep.EndpointID = hex.EncodeToString(sum[:])
			}
		}
		s.Networks[string(mode)] = ep
	}
	return s
}
