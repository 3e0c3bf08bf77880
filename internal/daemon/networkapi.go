package daemon

import (
	"fmt"
	"strconv"

	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/netsvc"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/task/vmtask"
)

// Connecting and disconnecting containers (the rest of the network API
// is internal/netsvc).

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
	if netsvc.ModeNetwork(mode) == "" {
		return fmt.Errorf("container sharing network namespace with another container or host cannot be connected to any other network: %w", errdefs.ErrForbidden)
	}
	if n.Driver != network.DriverBridge {
		return fmt.Errorf("container cannot be disconnected from host network or connected to host network: %w", errdefs.ErrForbidden)
	}
	if _, on := c.Networks[n.Name]; on {
		return fmt.Errorf("endpoint with name %s already exists in network %s: %w", c.Name, n.Name, errdefs.ErrForbidden)
	}
	keep, err := netsvc.EndpointConfig(n, es)
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
	c.Networks = netsvc.With(c.Networks, n.Name, keep)
	if err := d.save(c); err != nil {
		return err
	}
	d.NetworkEvent(n.ID, events.ActionConnect, c.ID)
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
	d.NetworkEvent(n.ID, events.ActionDisconnect, c.ID)
	return nil
}
