package daemon

import (
	"sort"
	"strconv"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/checkpoints"
	"github.com/tent-project/tent/internal/netsvc"
	"github.com/tent-project/tent/internal/network"
)

// A container's networks: the one its network mode names (bridge for
// "default") and those connected since, by name, in record.Networks
// (what was asked: aliases, address, MAC). While it runs its endpoints
// are the network manager's (internal/network), which keeps them on disk:
// they are the truth for a running container, the record for a stopped
// one.

// networkNames are a container's networks in the order they are plugged
// in: its network mode's first (eth0, and the default route), then the
// others by name.
func networkNames(c *ctr) []string {
	main := netsvc.ModeNetwork(c.HostConfig.NetworkMode)
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
func (d *Daemon) allocateNetworks(c *ctr, saved map[string]checkpoints.Endpoint) (eps []*network.Endpoint, err error) {
	defer func() {
		if err != nil {
			d.net.ReleaseAll(c.ID)
			eps = nil
		}
	}()
	ports, err := netsvc.PortMappings(c.Config, c.HostConfig)
	if err != nil {
		return nil, err
	}
	if main := netsvc.ModeNetwork(c.HostConfig.NetworkMode); main != "" && c.Networks[main] == nil {
		c.Networks = netsvc.With(c.Networks, main, &netapi.EndpointSettings{}) // a record from before networks
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
	pid := 0
	if c.running() {
		pid = c.State.Pid
	}
	return d.Settings(netsvc.Container{ID: c.ID, Pid: pid, Started: !c.State.StartedAt.IsZero(), Mode: c.HostConfig.NetworkMode,
		Exposed: c.Config.ExposedPorts, Networks: c.Networks})
}
