package daemon

import (
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
// does and returns what its record keeps of them.
func (d *Daemon) createNetworks(cfg *container.Config, hc *container.HostConfig, nc *netapi.NetworkingConfig) (map[string]*netapi.EndpointSettings, error) {
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
	if mode.IsHost() || mode.IsNone() || mode.IsContainer() {
		// docker discards published ports of a container on the host's
		// network (with a warning); the same here.
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

func parseMAC(s string) (netapi.HardwareAddr, error) {
	var hw netapi.HardwareAddr
	if err := hw.UnmarshalText([]byte(s)); err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("invalid MAC address %q: %w", s, errdefs.ErrInvalidArgument)
	}
	return hw, nil
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
// held. On error none is kept.
func (d *Daemon) allocateNetworks(c *ctr) (eps []*network.Endpoint, err error) {
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
		d.networkEvent(ep.Network, events.ActionConnect, c.ID)
	}
	return nil
}

// releaseNetworks frees a container's endpoints once it has stopped.
func (d *Daemon) releaseNetworks(c *ctr) {
	for id := range d.net.ContainerEndpoints(c.ID) {
		d.net.Release(c.ID, id)
		d.networkEvent(id, events.ActionDisconnect, c.ID)
	}
}

func (d *Daemon) networkEvent(netID string, action events.Action, containerID string) {
	attrs := map[string]string{"type": network.DriverBridge}
	if n, err := d.net.Get(netID); err == nil {
		attrs["name"], attrs["type"] = n.Name, n.Driver
	}
	if containerID != "" {
		attrs["container"] = containerID
	}
	d.event(events.NetworkEventType, action, netID, attrs)
}

// networkSettings are a container's NetworkSettings in inspect; c.mu is
// held.
func (d *Daemon) networkSettings(c *ctr) *container.NetworkSettings {
	s := &container.NetworkSettings{Ports: netapi.PortMap{}, Networks: map[string]*netapi.EndpointSettings{}}
	live := map[string]network.Endpoint{}
	if c.running() {
		live = d.net.ContainerEndpoints(c.ID)
		s.SandboxKey = fmt.Sprintf("/proc/%d/ns/net", c.State.Pid)
		s.SandboxID = c.ID
	}
	for p := range c.Config.ExposedPorts {
		s.Ports[p] = nil
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
				if hw, err := parseMAC(ep.MAC); err == nil {
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
	return s
}

// The network API.

// NetworkCreate makes a network, as POST /networks/create.
func (d *Daemon) NetworkCreate(req netapi.CreateRequest) (netapi.CreateResponse, error) {
	o := network.CreateOpts{Name: req.Name, Driver: req.Driver, Internal: req.Internal, Attachable: req.Attachable,
		Options: req.Options, Labels: req.Labels}
	if req.EnableIPv6 != nil && *req.EnableIPv6 {
		o.IPv6 = true
	}
	if req.EnableIPv4 != nil && !*req.EnableIPv4 {
		return netapi.CreateResponse{}, fmt.Errorf("networks without IPv4 are not supported yet: %w", errdefs.ErrNotImplemented)
	}
	if req.Scope != "" && req.Scope != "local" {
		return netapi.CreateResponse{}, fmt.Errorf("scope %q is not supported (local only): %w", req.Scope, errdefs.ErrNotImplemented)
	}
	if req.ConfigOnly || req.ConfigFrom != nil || req.Ingress {
		return netapi.CreateResponse{}, fmt.Errorf("config-only, config-from and ingress networks are not supported: %w", errdefs.ErrNotImplemented)
	}
	if req.IPAM != nil {
		if req.IPAM.Driver != "" && req.IPAM.Driver != "default" {
			return netapi.CreateResponse{}, fmt.Errorf("IPAM driver %q not found: %w", req.IPAM.Driver, errdefs.ErrNotFound)
		}
		var v4 []netapi.IPAMConfig
		for _, c := range req.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is6() {
				if !o.IPv6 {
					return netapi.CreateResponse{}, fmt.Errorf("an IPv6 subnet needs --ipv6: %w", errdefs.ErrInvalidArgument)
				}
				continue // refused with o.IPv6 below
			}
			v4 = append(v4, c)
		}
		if len(v4) > 1 {
			return netapi.CreateResponse{}, fmt.Errorf("more than one IPv4 subnet per network is not supported yet: %w", errdefs.ErrNotImplemented)
		}
		if len(v4) == 1 {
			c := v4[0]
			if len(c.AuxAddress) > 0 {
				return netapi.CreateResponse{}, fmt.Errorf("auxiliary addresses are not supported yet: %w", errdefs.ErrNotImplemented)
			}
			if c.Subnet.IsValid() {
				o.Subnet = c.Subnet.String()
			}
			if c.IPRange.IsValid() {
				o.IPRange = c.IPRange.String()
			}
			if c.Gateway.IsValid() {
				o.Gateway = c.Gateway.String()
			}
		}
	}
	n, err := d.net.Create(o)
	if err != nil {
		return netapi.CreateResponse{}, err
	}
	d.networkEvent(n.ID, events.ActionCreate, "")
	return netapi.CreateResponse{ID: n.ID, Warning: ""}, nil
}

// NetworkInspect describes a network, as GET /networks/{id}.
func (d *Daemon) NetworkInspect(ref string) (netapi.Inspect, error) {
	n, err := d.net.Get(ref)
	if err != nil {
		return netapi.Inspect{}, err
	}
	return d.networkInspect(n), nil
}

func (d *Daemon) networkInspect(n *network.Network) netapi.Inspect {
	out := netapi.Inspect{Network: netapi.Network{
		Name: n.Name, ID: n.ID, Scope: "local", Driver: n.Driver, EnableIPv4: true, Internal: n.Internal,
		Attachable: n.Attachable, Options: n.Options, Labels: n.Labels,
		IPAM: netapi.IPAM{Driver: "default", Config: []netapi.IPAMConfig{}},
	}, Containers: map[string]netapi.EndpointResource{}}
	out.Created = n.Created
	if out.Options == nil {
		out.Options = map[string]string{}
	}
	if out.Labels == nil {
		out.Labels = map[string]string{}
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, netapi.IPAMConfig{Subnet: n.Subnet, Gateway: n.Gateway, IPRange: n.IPRange})
	}
	for _, ep := range d.net.Endpoints(n.ID) {
		var hw netapi.HardwareAddr
		hw, _ = parseMAC(ep.MAC)
		out.Containers[ep.Container] = netapi.EndpointResource{Name: ep.Name, EndpointID: ep.ID, MacAddress: hw,
			IPv4Address: netip.PrefixFrom(ep.IP, n.Subnet.Bits())}
	}
	return out
}

// NetworkList lists networks, as GET /networks, with dockerd's filters.
func (d *Daemon) NetworkList(f map[string][]string) ([]netapi.Inspect, error) {
	for k, vals := range f {
		switch k {
		case "driver", "id", "label", "name", "scope", "type", "dangling":
		default:
			return nil, fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
		for _, v := range vals {
			if k == "type" && v != "custom" && v != "builtin" {
				return nil, fmt.Errorf("invalid filter: 'type'='%s': %w", v, errdefs.ErrInvalidArgument)
			}
		}
	}
	out := []netapi.Inspect{}
	for _, n := range d.net.List() {
		if d.networkMatches(n, f) {
			out = append(out, d.networkInspect(n))
		}
	}
	return out, nil
}

func (d *Daemon) networkMatches(n *network.Network, f map[string][]string) bool {
	any := func(key string, ok func(string) bool) bool {
		vals, set := f[key]
		return !set || slices.ContainsFunc(vals, ok)
	}
	return any("driver", func(v string) bool { return v == n.Driver }) &&
		any("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
		any("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
		any("scope", func(v string) bool { return v == "local" }) &&
		any("type", func(v string) bool { return (v == "builtin") == n.Predefined() }) &&
		any("dangling", func(v string) bool { return (v == "true" || v == "1") == (!n.Predefined() && !d.networkUsed(n)) }) &&
		allLabels(n.Labels, f["label"])
}

// networkUsed reports whether any container, running or not, is on n.
func (d *Daemon) networkUsed(n *network.Network) bool {
	if d.net.InUse(n.ID) {
		return true
	}
	for _, c := range d.all() {
		c.mu.Lock()
		_, on := c.Networks[n.Name]
		c.mu.Unlock()
		if on {
			return true
		}
	}
	return false
}

// NetworkRemove deletes a network, as DELETE /networks/{id}.
func (d *Daemon) NetworkRemove(ref string) error {
	n, err := d.net.Get(ref)
	if err != nil {
		return err
	}
	if err := d.net.Remove(n.ID); err != nil {
		return err
	}
	d.networkEvent(n.ID, events.ActionDestroy, "")
	return nil
}

// NetworkPrune removes the user-defined networks no container uses.
func (d *Daemon) NetworkPrune(f PruneFilter) ([]string, error) {
	deleted := []string{}
	for _, n := range d.net.List() {
		if n.Predefined() || d.networkUsed(n) || !f.matches(n.Created, n.Labels) {
			continue
		}
		if err := d.net.Remove(n.ID); err == nil {
			d.event(events.NetworkEventType, events.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": n.Driver})
			deleted = append(deleted, n.Name)
		}
	}
	return deleted, nil
}

// NetworkConnect puts a container on a network, as POST
// /networks/{id}/connect: recorded, and plugged in at once if it runs.
func (d *Daemon) NetworkConnect(ref, containerRef string, es *netapi.EndpointSettings) error {
	n, err := d.net.Get(ref)
	if err != nil {
		return err
	}
	c, err := d.get(containerRef)
	if err != nil {
		return err
	}
	if es == nil {
		es = &netapi.EndpointSettings{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	mode := c.HostConfig.NetworkMode
	if modeNetwork(mode) == "" {
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", errdefs.ErrForbidden)
	}
	if n.Driver != network.DriverBridge {
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrForbidden)
	}
	if _, on := c.Networks[n.Name]; on {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrForbidden)
	}
	keep, err := endpointConfig(n, es)
	if err != nil {
		return err
	}
	if c.running() {
		o := network.EndpointOpts{Container: c.ID, Name: c.Name, Aliases: keep.Aliases, Iface: d.nextIface(c)}
		if keep.IPAMConfig != nil {
			o.IP = keep.IPAMConfig.IPv4Address
		}
		if len(keep.MacAddress) > 0 {
			o.MAC = keep.MacAddress.String()
		}
		ep, err := d.net.Allocate(n.ID, o)
		if err != nil {
			return err
		}
		if err := d.net.Wire(ep, c.State.Pid); err != nil {
			d.net.Release(c.ID, n.ID)
			return err
		}
	}
	c.Networks = mapsWith(c.Networks, n.Name, keep)
	if err := d.save(c); err != nil {
		return err
	}
	d.networkEvent(n.ID, events.ActionConnect, c.ID)
	return nil
}

// nextIface is the first free ethN of a running container; c.mu is held.
func (d *Daemon) nextIface(c *ctr) string {
	used := map[string]bool{}
	for _, ep := range d.net.ContainerEndpoints(c.ID) {
		used[ep.Iface] = true
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name
		}
	}
}

// NetworkDisconnect takes a container off a network, as POST
// /networks/{id}/disconnect.
func (d *Daemon) NetworkDisconnect(ref, containerRef string, force bool) error {
	n, err := d.net.Get(ref)
	if err != nil {
		return err
	}
	c, err := d.get(containerRef)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, on := c.Networks[n.Name]; !on {
		return fmt.Errorf("container %s is not connected to network %s: %w", c.ID[:12], n.Name, errdefs.ErrForbidden)
	}
	if c.running() {
		if ep, ok := d.net.ContainerEndpoints(c.ID)[n.ID]; ok {
			if err := d.net.Unwire(&ep, c.State.Pid); err != nil && !force {
				return fmt.Errorf("disconnect %s from %s: %w", c.Name, n.Name, err)
			}
			d.net.Release(c.ID, n.ID)
		}
	}
	nets := map[string]*netapi.EndpointSettings{}
	for k, v := range c.Networks {
		if k != n.Name {
			nets[k] = v
		}
	}
	c.Networks = nets
	if err := d.save(c); err != nil {
		return err
	}
	d.networkEvent(n.ID, events.ActionDisconnect, c.ID)
	return nil
}
