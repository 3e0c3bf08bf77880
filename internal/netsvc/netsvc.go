// Package netsvc answers the Engine API's network endpoints (create,
// inspect, list with dockerd's filters, remove, prune, connect and
// disconnect) over the network manager (internal/network), with their
// events, and gives a starting container its endpoints (endpoints.go).
package netsvc

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/eventbus"
	"github.com/tent-project/tent/internal/network"
)

// Networks answers the network endpoints.
type Networks struct {
	net    *network.Manager
	events *eventbus.Bus
	ctrs   *containers.Store
}

// New makes the service over the engine's containers.
func New(m *network.Manager, bus *eventbus.Bus, ctrs *containers.Store) *Networks {
	return &Networks{net: m, events: bus, ctrs: ctrs}
}

// NetworkEvent publishes an event of network netID (of a container's
// where containerID is set).
func (s *Networks) NetworkEvent(netID string, action events.Action, containerID string) {
	attrs := map[string]string{"type": network.DriverBridge}
	if n, err := s.net.Get(netID); err == nil {
		attrs["name"], attrs["type"] = n.Name, n.Driver
	}
	if containerID != "" {
		attrs["container"] = containerID
	}
	s.events.Publish(events.NetworkEventType, action, netID, attrs)
}

// ParseMAC reads a MAC address as docker takes it.
func ParseMAC(s string) (netapi.HardwareAddr, error) {
	var hw netapi.HardwareAddr
	if err := hw.UnmarshalText([]byte(s)); err != nil || len(hw) != 6 {
		return nil, fmt.Errorf("invalid MAC address %q: %w", s, errdefs.ErrInvalidArgument)
	}
	return hw, nil
}

// NetworkCreate makes a network, as POST /networks/create.
func (s *Networks) NetworkCreate(req netapi.CreateRequest) (netapi.CreateResponse, error) {
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
		var v4, v6 []netapi.IPAMConfig
		for _, c := range req.IPAM.Config {
			if c.Subnet.IsValid() && c.Subnet.Addr().Is6() {
				v6 = append(v6, c)
			} else {
				v4 = append(v4, c)
			}
		}
		if len(v4) > 1 || len(v6) > 1 {
			return netapi.CreateResponse{}, fmt.Errorf("more than one subnet of a family per network is not supported yet: %w", errdefs.ErrNotImplemented)
		}
		for _, c := range append(v4, v6...) {
			for name, a := range c.AuxAddress {
				if o.Aux == nil {
					o.Aux = map[string]string{}
				}
				o.Aux[name] = a.String()
			}
		}
		if len(v4) == 1 {
			o.Subnet, o.IPRange, o.Gateway = text(v4[0].Subnet), text(v4[0].IPRange), text(v4[0].Gateway)
		}
		if len(v6) == 1 {
			o.Subnet6, o.IPRange6, o.Gateway6 = text(v6[0].Subnet), text(v6[0].IPRange), text(v6[0].Gateway)
		}
	}
	n, err := s.net.Create(o)
	if err != nil {
		return netapi.CreateResponse{}, err
	}
	s.NetworkEvent(n.ID, events.ActionCreate, "")
	return netapi.CreateResponse{ID: n.ID, Warning: ""}, nil
}

// text is v as text, "" if it is not valid.
func text[T interface {
	IsValid() bool
	String() string
}](v T) string {
	if !v.IsValid() {
		return ""
	}
	return v.String()
}

// NetworkInspect describes a network, as GET /networks/{id}.
func (s *Networks) NetworkInspect(ref string) (netapi.Inspect, error) {
	n, err := s.net.Get(ref)
	if err != nil {
		return netapi.Inspect{}, err
	}
	return s.inspect(n), nil
}

func (s *Networks) inspect(n *network.Network) netapi.Inspect {
	out := netapi.Inspect{Network: netapi.Network{
		Name: n.Name, ID: n.ID, Scope: "local", Driver: n.Driver, EnableIPv4: true, EnableIPv6: n.IPv6(), Internal: n.Internal,
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
	// As dockerd's: a gateway that was not asked for with a subnet that
	// was is not shown.
	gateway := func(gw netip.Addr, implicit bool) netip.Addr {
		if implicit {
			return netip.Addr{}
		}
		return gw
	}
	// Each subnet's auxiliary addresses with it.
	aux := func(sub netip.Prefix) map[string]netip.Addr {
		var out map[string]netip.Addr
		for name, a := range n.Aux {
			if sub.Contains(a) {
				if out == nil {
					out = map[string]netip.Addr{}
				}
				out[name] = a
			}
		}
		return out
	}
	if n.Subnet.IsValid() {
		out.IPAM.Config = append(out.IPAM.Config, netapi.IPAMConfig{Subnet: n.Subnet, Gateway: gateway(n.Gateway, n.ImplicitGateway), IPRange: n.IPRange, AuxAddress: aux(n.Subnet)})
	}
	if n.IPv6() {
		out.IPAM.Config = append(out.IPAM.Config, netapi.IPAMConfig{Subnet: n.Subnet6, Gateway: gateway(n.Gateway6, n.ImplicitGateway6), IPRange: n.IPRange6, AuxAddress: aux(n.Subnet6)})
	}
	for _, ep := range s.net.Endpoints(n.ID) {
		var hw netapi.HardwareAddr
		hw, _ = ParseMAC(ep.MAC)
		res := netapi.EndpointResource{Name: ep.Name, EndpointID: ep.ID, MacAddress: hw,
			IPv4Address: netip.PrefixFrom(ep.IP, n.Subnet.Bits())}
		if ep.IP6.IsValid() {
			res.IPv6Address = netip.PrefixFrom(ep.IP6, n.Subnet6.Bits())
		}
		out.Containers[ep.Container] = res
	}
	return out
}

// NetworkList lists networks, as GET /networks, with dockerd's filters.
func (s *Networks) NetworkList(f map[string][]string) ([]netapi.Inspect, error) {
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
	for _, n := range s.net.List() {
		if s.matches(n, f) {
			out = append(out, s.inspect(n))
		}
	}
	return out, nil
}

func (s *Networks) matches(n *network.Network, f map[string][]string) bool {
	any := func(key string, ok func(string) bool) bool {
		vals, set := f[key]
		return !set || slices.ContainsFunc(vals, ok)
	}
	return any("driver", func(v string) bool { return v == n.Driver }) &&
		any("id", func(v string) bool { return strings.HasPrefix(n.ID, v) }) &&
		any("name", func(v string) bool { return strings.Contains(n.Name, v) }) &&
		any("scope", func(v string) bool { return v == "local" }) &&
		any("type", func(v string) bool { return (v == "builtin") == n.Predefined() }) &&
		any("dangling", func(v string) bool { return (v == "true" || v == "1") == (!n.Predefined() && !s.used(n)) }) &&
		backend.AllLabels(n.Labels, f["label"])
}

// NetworkRemove deletes a network, as DELETE /networks/{id}.
func (s *Networks) NetworkRemove(ref string) error {
	n, err := s.net.Get(ref)
	if err != nil {
		return err
	}
	if err := s.net.Remove(n.ID); err != nil {
		return err
	}
	s.NetworkEvent(n.ID, events.ActionDestroy, "")
	return nil
}

// NetworkPrune removes the user-defined networks no container uses.
func (s *Networks) NetworkPrune(f backend.PruneFilter) ([]string, error) {
	deleted := []string{}
	for _, n := range s.net.List() {
		if n.Predefined() || s.used(n) || !f.Matches(n.Created, n.Labels) {
			continue
		}
		if err := s.net.Remove(n.ID); err == nil {
			s.events.Publish(events.NetworkEventType, events.ActionDestroy, n.ID, map[string]string{"name": n.Name, "type": n.Driver})
			deleted = append(deleted, n.Name)
		}
	}
	return deleted, nil
}
