package daemon

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/task/vmtask"
)

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
func (d *Daemon) NetworkPrune(f backend.PruneFilter) ([]string, error) {
	deleted := []string{}
	for _, n := range d.net.List() {
		if n.Predefined() || d.networkUsed(n) || !f.Matches(n.Created, n.Labels) {
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
	if c.HostConfig.Runtime == vmtask.Name {
		return fmt.Errorf("connecting a VM container to another network is not supported yet (a VM has one, given at its start): %w", errdefs.ErrNotImplemented)
	}
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
	if c.HostConfig.Runtime == vmtask.Name && c.running() {
		return fmt.Errorf("disconnecting a running VM container from its network is not supported yet: %w", errdefs.ErrNotImplemented)
	}
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
