package netsvc

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/network"
)

// A container's network settings: checked at create, its endpoints' ports,
// its settings in inspect.

// ModeNetwork is the network a network mode names; "": none, host or
// another container's.
func ModeNetwork(mode container.NetworkMode) string {
	switch {
	case mode == "" || mode == "default":
		return network.NameBridge
	case mode.IsNone() || mode.IsHost() || mode.IsContainer():
		return ""
	}
	return string(mode)
}

// CheckCreate checks a new container's network settings as dockerd does
// and returns what its record keeps of them, and dockerd's warnings;
// exists looks up a container whose network namespace it would share.
func (s *Networks) CheckCreate(cfg *container.Config, hc *container.HostConfig, nc *netapi.NetworkingConfig, exists func(ref string) error) (map[string]*netapi.EndpointSettings, []string, error) {
	warnings := []string{}
	out, err := s.checkCreate(cfg, hc, nc, exists, &warnings)
	return out, warnings, err
}

func (s *Networks) checkCreate(cfg *container.Config, hc *container.HostConfig, nc *netapi.NetworkingConfig, exists func(ref string) error, warnings *[]string) (map[string]*netapi.EndpointSettings, error) {
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
		if err := exists(mode.ConnectedContainer()); err != nil {
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
	if _, err := PortMappings(cfg, hc); err != nil {
		return nil, err
	}
	if len(hc.Links) > 0 && mode != "" && mode != "default" && mode != network.NameBridge && ModeNetwork(mode) == "" {
		return nil, fmt.Errorf("conflicting options: links and the network mode %s: %w", mode, errdefs.ErrInvalidArgument)
	}
	if _, err := s.ExtraHosts(hc); err != nil {
		return nil, err
	}
	out := map[string]*netapi.EndpointSettings{}
	main := ModeNetwork(mode)
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
			asked = With(asked, main, &netapi.EndpointSettings{})
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
		n, err := s.net.Get(name)
		if errdefs.IsNotFound(err) {
			// dockerd looks the network up at start: a 404 from create
			// would make the docker CLI pull the image.
			out[name] = &netapi.EndpointSettings{Aliases: es.Aliases, IPAMConfig: es.IPAMConfig, MacAddress: es.MacAddress}
			continue
		}
		if err != nil {
			return nil, err
		}
		keep, err := EndpointConfig(n, es)
		if err != nil {
			return nil, err
		}
		out[n.Name] = keep
	}
	return out, nil
}

// With is m with k set to v, m unchanged.
func With[V any](m map[string]V, k string, v V) map[string]V {
	out := map[string]V{k: v}
	for key, val := range m {
		out[key] = val
	}
	return out
}

// EndpointConfig checks what a container asks of network n, as dockerd
// does at create and connect, and keeps it.
func EndpointConfig(n *network.Network, es *netapi.EndpointSettings) (*netapi.EndpointSettings, error) {
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
		ip := ipam.IPv6Address
		if !n.UserDefined() {
			return nil, fmt.Errorf("user specified IP address is supported on user defined networks only: %w", errdefs.ErrInvalidArgument)
		}
		if !ip.Is6() || !n.Subnet6.Contains(ip) {
			return nil, fmt.Errorf("no configured subnet or ip-range contain the IP address %s: %w", ip, errdefs.ErrInvalidArgument)
		}
		if keep.IPAMConfig == nil {
			keep.IPAMConfig = &netapi.EndpointIPAMConfig{}
		}
		keep.IPAMConfig.IPv6Address = ip
	}
	return keep, nil
}

// PortMappings are the ports a container publishes: its bindings and,
// with -P, every exposed port not bound (a host port of 0: any free one).
func PortMappings(cfg *container.Config, hc *container.HostConfig) ([]network.PortMapping, error) {
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
			// No address: 0.0.0.0 and :: (network.Manager's allocation).
			m := network.PortMapping{Proto: string(p.Proto()), ContainerPort: p.Num(), HostIP: b.HostIP.Unmap()}
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

// ExtraHosts are the --add-host entries as (name, address) pairs, with
// host-gateway replaced by the default bridge's gateway (docker's
// default host-gateway address).
func (s *Networks) ExtraHosts(hc *container.HostConfig) ([][2]string, error) {
	var out [][2]string
	for _, h := range hc.ExtraHosts {
		name, ip, ok := strings.Cut(h, ":")
		if !ok {
			if name, ip, ok = strings.Cut(h, "="); !ok {
				return nil, fmt.Errorf("invalid extra host %q: %w", h, errdefs.ErrInvalidArgument)
			}
		}
		if ip == "host-gateway" {
			br, err := s.net.Get(network.NameBridge)
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

// Container is what Settings needs of a container.
type Container struct {
	ID      string
	Pid     int  // 0 when it does not run
	Started bool // it ran once
	Mode    container.NetworkMode
	Exposed netapi.PortSet
	// Networks are the record's: what was asked of each network.
	Networks map[string]*netapi.EndpointSettings
}

// Settings are a container's NetworkSettings in inspect, as dockerd's:
// what its endpoints have while it runs, else what it asked.
func (s *Networks) Settings(c Container) *container.NetworkSettings {
	ns := &container.NetworkSettings{Ports: netapi.PortMap{}, Networks: map[string]*netapi.EndpointSettings{}}
	live := map[string]network.Endpoint{}
	mode := c.Mode
	if c.Pid > 0 {
		live = s.net.ContainerEndpoints(c.ID)
		ns.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", c.Pid)
	}
	if c.Started {
		ns.SandboxID = c.ID // the container's own namespace; dockerd keeps it once made
	}
	if !mode.IsNone() && !mode.IsHost() && !mode.IsContainer() { // as dockerd: ports are an interface's
		for p := range c.Exposed {
			ns.Ports[p] = nil
		}
	}
	for name, es := range c.Networks {
		out := *es
		out.Aliases = slices.Clone(es.Aliases)
		if n, err := s.net.Get(es.NetworkID); err == nil {
			if ep, ok := live[n.ID]; ok {
				out.EndpointID, out.IPAddress, out.IPPrefixLen, out.DNSNames = ep.ID, ep.IP, n.Subnet.Bits(), nil
				out.Gateway = n.Gateway // each network's, as dockerd 20.10: not only the default route's
				if ep.IP6.IsValid() {
					out.GlobalIPv6Address, out.GlobalIPv6PrefixLen = ep.IP6, n.Subnet6.Bits()
					out.IPv6Gateway = n.Gateway6
				}
				if hw, err := ParseMAC(ep.MAC); err == nil {
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
					ns.Ports[port] = append(ns.Ports[port], netapi.PortBinding{HostIP: hostIP, HostPort: strconv.Itoa(int(p.HostPort))})
				}
			}
		}
		ns.Networks[name] = &out
	}
	// As dockerd: a container of --network none or host is an endpoint of
	// that predefined network once started, with an endpoint while it runs.
	if (mode.IsNone() || mode.IsHost()) && len(ns.Networks) == 0 {
		ep := &netapi.EndpointSettings{}
		if n, err := s.net.Get(string(mode)); err == nil && c.Started {
			ep.NetworkID = n.ID
			if c.Pid > 0 {
				sum := sha256.Sum256([]byte(c.ID + "/" + n.ID))
				ep.EndpointID = hex.EncodeToString(sum[:])
			}
		}
		ns.Networks[string(mode)] = ep
	}
	return ns
}
