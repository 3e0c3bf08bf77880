package netsvc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/checkpoints"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/task"
	"github.com/tent-project/tent/internal/task/vmtask"
)

// A container's networks: the one its network mode names (bridge for
// "default") and those connected since, by name, in its record's
// Networks (what was asked: aliases, address, MAC). While it runs its
// endpoints are the network manager's, which keeps them on disk: they are
// the truth for a running container, the record for a stopped one.

// networkNames are a container's networks in the order they are plugged
// in: its network mode's first (eth0, and the default route), then the
// others by name.
func networkNames(c *containers.Container) []string {
	main := ModeNetwork(c.HostConfig.NetworkMode)
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

// AllocateEndpoints gives a container about to start its endpoints
// (addresses and host ports), before its /etc/hosts is written; c.Mu is
// held. On error none is kept. saved are the addresses of a checkpoint
// being restored, by network ID: its guest has them already.
func (s *Networks) AllocateEndpoints(c *containers.Container, saved map[string]checkpoints.Endpoint) (eps []*network.Endpoint, err error) {
	defer func() {
		if err != nil {
			s.net.ReleaseAll(c.ID)
			eps = nil
		}
	}()
	ports, err := PortMappings(c.Config, c.HostConfig)
	if err != nil {
		return nil, err
	}
	if main := ModeNetwork(c.HostConfig.NetworkMode); main != "" && c.Networks[main] == nil {
		c.Networks = With(c.Networks, main, &netapi.EndpointSettings{}) // a record from before networks
	}
	names := networkNames(c)
	gw := s.gatewayNetwork(names)
	for i, name := range names {
		es := c.Networks[name]
		ref := es.NetworkID
		if ref == "" {
			ref = name
		}
		o := endpointOpts(c, es, "eth"+strconv.Itoa(i))
		o.Gateway = name == gw
		if i == 0 {
			o.Ports = ports
			o.Links = s.linkedPorts(c)
		}
		if n, err := s.net.Get(ref); err == nil && saved != nil {
			if sv, ok := saved[n.ID]; ok {
				o.IP, o.IP6, o.MAC, o.Restored = sv.IP, sv.IP6, sv.MAC, true
			}
		}
		for _, ip := range c.HostConfig.DNS {
			o.DNS = append(o.DNS, ip.String())
		}
		ep, err := s.net.Allocate(ref, o)
		if err != nil {
			return nil, err
		}
		eps = append(eps, ep)
	}
	return eps, nil
}

// gatewayNetwork is the one of networks (by name) a container's default
// routes go through: as dockerd, the first by name of those with a way
// out (not --internal), whichever the container joined first.
func (s *Networks) gatewayNetwork(networks []string) string {
	names := slices.Sorted(slices.Values(networks))
	for _, name := range names {
		if n, err := s.net.Get(name); err == nil && !n.Internal {
			return name
		}
	}
	return ""
}

// moveGateway puts a running container's default routes on the network
// they now go through (gatewayNetwork of networks), after a connect or
// disconnect; c.Mu is held.
func (s *Networks) moveGateway(c *containers.Container, networks []string) error {
	id := ""
	if n, err := s.net.Get(s.gatewayNetwork(networks)); err == nil {
		id = n.ID
	}
	return s.net.MoveGateway(c.ID, id, c.State.Pid)
}

// endpointOpts are what c asked of a network (es) for an endpoint on
// interface iface.
func endpointOpts(c *containers.Container, es *netapi.EndpointSettings, iface string) network.EndpointOpts {
	o := network.EndpointOpts{Container: c.ID, Name: c.Name, Aliases: es.Aliases, Iface: iface}
	if es.IPAMConfig != nil {
		o.IP, o.IP6 = es.IPAMConfig.IPv4Address, es.IPAMConfig.IPv6Address
	}
	if len(es.MacAddress) > 0 {
		o.MAC = es.MacAddress.String()
	}
	return o
}

// WireEndpoints plugs the endpoints into the created task's namespace.
func (s *Networks) WireEndpoints(c *containers.Container, eps []*network.Endpoint, pid int) error {
	for _, ep := range eps {
		if err := s.net.Wire(ep, pid); err != nil {
			return err
		}
	}
	for _, ep := range eps {
		s.NetworkEvent(ep.Network, events.ActionConnect, c.ID)
	}
	return nil
}

// ReleaseEndpoints frees a container's endpoints once it has stopped.
func (s *Networks) ReleaseEndpoints(c *containers.Container) {
	for id := range s.net.ContainerEndpoints(c.ID) {
		s.net.Release(c.ID, id)
		s.NetworkEvent(id, events.ActionDisconnect, c.ID)
	}
}

// SettingsOf are a container's NetworkSettings in inspect; c.Mu is held.
func (s *Networks) SettingsOf(c *containers.Container) *container.NetworkSettings {
	pid := 0
	if c.Running() {
		pid = c.State.Pid
	}
	return s.Settings(Container{ID: c.ID, Pid: pid, Started: !c.State.StartedAt.IsZero(), Mode: c.HostConfig.NetworkMode,
		Exposed: c.Config.ExposedPorts, Networks: c.Networks})
}

// used reports whether any container, running or not, is on n.
func (s *Networks) used(n *network.Network) bool {
	if s.net.InUse(n.ID) {
		return true
	}
	for _, c := range s.ctrs.All() {
		c.Mu.Lock()
		_, on := c.Networks[n.Name]
		c.Mu.Unlock()
		if on {
			return true
		}
	}
	return false
}

// NetworkConnect puts a container on a network, as POST
// /networks/{id}/connect: recorded, and plugged in at once if it runs.
func (s *Networks) NetworkConnect(ref, containerRef string, es *netapi.EndpointSettings) error {
	n, err := s.net.Get(ref)
	if err != nil {
		return err
	}
	c, err := s.ctrs.Get(containerRef)
	if err != nil {
		return err
	}
	if es == nil {
		es = &netapi.EndpointSettings{}
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	if c.HostConfig.Runtime == vmtask.Name && len(c.Networks) >= vmtask.MaxNetworks {
		return fmt.Errorf("a VM container can be on %d networks at most (its NICs): %w", vmtask.MaxNetworks, errdefs.ErrForbidden)
	}
	// dockerd 20.10's words and status (400) for each.
	switch {
	case c.HostConfig.NetworkMode.IsNone() || n.Driver == network.DriverNull:
		return fmt.Errorf("container cannot be connected to multiple networks with one of the networks in private (none) mode: %w", errdefs.ErrInvalidArgument)
	case ModeNetwork(c.HostConfig.NetworkMode) == "":
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", errdefs.ErrInvalidArgument)
	case n.Driver != network.DriverBridge:
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrInvalidArgument)
	}
	if _, on := c.Networks[n.Name]; on {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrForbidden)
	}
	keep, err := EndpointConfig(n, es)
	if err != nil {
		return err
	}
	if c.Running() {
		ep, err := s.net.Allocate(n.ID, endpointOpts(c, keep, s.nextIface(c)))
		if err != nil {
			return err
		}
		if err := s.net.Wire(ep, c.State.Pid); err != nil {
			s.net.Release(c.ID, n.ID)
			return err
		}
		names := append(networkNames(c), n.Name)
		err = s.moveGateway(c, names)
		if err == nil {
			err = syncNetwork(c)
		}
		if err != nil {
			s.net.Unwire(ep, c.State.Pid)
			s.net.Release(c.ID, n.ID)
			s.moveGateway(c, names[:len(names)-1])
			syncNetwork(c)
			return fmt.Errorf("connect %s to %s: %w", c.Name, n.Name, err)
		}
	}
	c.Networks = With(c.Networks, n.Name, keep)
	if err := s.ctrs.Save(c); err != nil {
		return err
	}
	s.NetworkEvent(n.ID, events.ActionConnect, c.ID)
	return nil
}

// nextIface is the first free ethN of a running container; c.Mu is held.
func (s *Networks) nextIface(c *containers.Container) string {
	used := map[string]bool{}
	for _, ep := range s.net.ContainerEndpoints(c.ID) {
		used[ep.Iface] = true
	}
	for i := 0; ; i++ {
		if name := "eth" + strconv.Itoa(i); !used[name] {
			return name
		}
	}
}

// syncNetwork tells a running task whose interfaces are more than its
// namespace's (a VM) that an endpoint was wired or unwired; c.Mu is held.
func syncNetwork(c *containers.Container) error {
	if t, ok := c.Task.(task.NetworkSyncer); ok {
		return t.SyncNetwork(context.Background())
	}
	return nil
}

// NetworkDisconnect takes a container off a network, as POST
// /networks/{id}/disconnect.
func (s *Networks) NetworkDisconnect(ref, containerRef string, force bool) error {
	n, err := s.net.Get(ref)
	if err != nil {
		return err
	}
	c, err := s.ctrs.Get(containerRef)
	if err != nil {
		if force && errdefs.IsNotFound(err) {
			return nil
		}
		return err
	}
	c.Mu.Lock()
	defer c.Mu.Unlock()
	if _, on := c.Networks[n.Name]; !on {
		return fmt.Errorf("container %s is not connected to network %s", c.ID, n.Name) // a 500, as dockerd's
	}
	if c.Running() {
		if ep, ok := s.net.ContainerEndpoints(c.ID)[n.ID]; ok {
			if err := s.net.Unwire(&ep, c.State.Pid); err != nil && !force {
				return fmt.Errorf("disconnect %s from %s: %w", c.Name, n.Name, err)
			}
			s.net.Release(c.ID, n.ID)
			rest := slices.DeleteFunc(networkNames(c), func(name string) bool { return name == n.Name })
			if err := errors.Join(s.moveGateway(c, rest), syncNetwork(c)); err != nil {
				// The endpoint is gone either way.
				slog.Warn("the container's routes after a disconnect", "container", c.ID, "network", n.Name, "err", err)
			}
		}
	}
	nets := map[string]*netapi.EndpointSettings{}
	for k, v := range c.Networks {
		if k != n.Name {
			nets[k] = v
		}
	}
	c.Networks = nets
	if err := s.ctrs.Save(c); err != nil {
		return err
	}
	s.NetworkEvent(n.ID, events.ActionDisconnect, c.ID)
	return nil
}

// linkedPorts are the exposed ports of the containers c links to
// (--link, on the default bridge), which a default bridge with icc off
// still lets it reach, as dockerd; c.Mu is held. A target that is not
// there is the spec's to refuse (ctrspec).
func (s *Networks) linkedPorts(c *containers.Container) []network.LinkedPort {
	if mode := c.HostConfig.NetworkMode; mode != "" && mode != "default" && mode != network.NameBridge {
		return nil
	}
	var out []network.LinkedPort
	for _, l := range c.HostConfig.Links {
		name, _, _ := strings.Cut(l, ":")
		target, err := s.ctrs.Get(strings.TrimPrefix(name, "/"))
		if err != nil || target == c {
			continue
		}
		target.Mu.Lock()
		for p := range target.Config.ExposedPorts {
			out = append(out, network.LinkedPort{Peer: target.ID, Proto: string(p.Proto()), Port: p.Num()})
		}
		target.Mu.Unlock()
	}
	return out
}
