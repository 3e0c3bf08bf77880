package cli

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
)

// networkCmd is `tent network`: create, ls, inspect, rm, prune, connect,
// disconnect.
func networkCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "network", Short: "Manage networks"}
	cmd.AddCommand(networkCreateCmd(a), networkLsCmd(a), inspectKindCmd(a, "network"), networkRmCmd(a),
		networkPruneCmd(a), networkConnectCmd(a), networkDisconnectCmd(a))
	return cmd
}

func networkCreateCmd(a *app) *cobra.Command {
	var driver string
	var subnets, ipRanges, gateways []string
	var internal, attachable, ipv6 bool
	var labels, opts, aux []string
	cmd := &cobra.Command{Use: "create [OPTIONS] NETWORK", Short: "Create a network", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		req := network.CreateRequest{Name: args[0], Driver: driver, Internal: internal, Attachable: attachable,
			Labels: keyValues(labels), Options: keyValues(opts)}
		if ipv6 {
			req.EnableIPv6 = &ipv6
		}
		configs, err := ipamConfigs(subnets, ipRanges, gateways, aux)
		if err != nil {
			return err
		}
		if len(configs) > 0 {
			req.IPAM = &network.IPAM{Driver: "default", Config: configs}
		}
		var resp network.CreateResponse
		if err := a.c.JSON(a.ctx, http.MethodPost, "/networks/create", nil, req, &resp); err != nil {
			return apiError(err, 1)
		}
		fmt.Println(resp.ID)
		return nil
	})
	f := cmd.Flags()
	f.StringVarP(&driver, "driver", "d", "bridge", "driver to manage the network")
	f.StringSliceVar(&subnets, "subnet", nil, "subnet in CIDR format that represents a network segment")
	f.StringSliceVar(&ipRanges, "ip-range", nil, "allocate container IPs from a sub-range")
	f.StringSliceVar(&gateways, "gateway", nil, "IPv4 or IPv6 gateway for the master subnet")
	f.BoolVar(&internal, "internal", false, "restrict external access to the network")
	f.BoolVar(&attachable, "attachable", false, "enable manual container attachment")
	f.BoolVar(&ipv6, "ipv6", false, "enable IPv6 networking")
	f.StringArrayVar(&aux, "aux-address", nil, "auxiliary IPv4 or IPv6 addresses used by network driver (name=address)")
	f.StringArrayVar(&labels, "label", nil, "set metadata on a network")
	f.StringArrayVarP(&opts, "opt", "o", nil, "set driver specific options")
	return cmd
}

// ipamConfigs are network create's --subnet, --ip-range, --gateway and
// --aux-address (each repeatable) as docker's CLI pairs them: each
// range, gateway and auxiliary address goes with the one subnet that
// contains it.
func ipamConfigs(subnets, ipRanges, gateways, aux []string) ([]network.IPAMConfig, error) {
	if len(subnets) == 0 {
		if len(ipRanges) > 0 || len(gateways) > 0 {
			return nil, errors.New("every ip-range or gateway must have a corresponding subnet")
		}
		for _, kv := range aux {
			_, a, _ := strings.Cut(kv, "=")
			return nil, fmt.Errorf("no matching subnet for aux-address %s", a)
		}
		return nil, nil
	}
	out := make([]network.IPAMConfig, len(subnets))
	for i, s := range subnets {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--subnet\" flag: %v", s, err)
		}
		out[i].Subnet = p
	}
	// owner is the config whose subnet holds a (a what); taken says
	// whether it has one.
	owner := func(a netip.Addr, what string, taken func(c *network.IPAMConfig) bool) (*network.IPAMConfig, error) {
		for i := range out {
			if out[i].Subnet.Contains(a) {
				if taken(&out[i]) {
					return nil, fmt.Errorf("cannot configure multiple %ss for the same subnet", what)
				}
				return &out[i], nil
			}
		}
		return nil, fmt.Errorf("no matching subnet for %s %s", what, a)
	}
	for _, r := range ipRanges {
		p, err := netip.ParsePrefix(r)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--ip-range\" flag: %v", r, err)
		}
		c, err := owner(p.Addr(), "range", func(c *network.IPAMConfig) bool { return c.IPRange.IsValid() })
		if err != nil {
			return nil, err
		}
		c.IPRange = p
	}
	for _, g := range gateways {
		a, err := netip.ParseAddr(g)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--gateway\" flag: %v", g, err)
		}
		c, err := owner(a, "gateway", func(c *network.IPAMConfig) bool { return c.Gateway.IsValid() })
		if err != nil {
			return nil, err
		}
		c.Gateway = a
	}
	for _, kv := range aux {
		name, v, ok := strings.Cut(kv, "=")
		a, err := netip.ParseAddr(v)
		if !ok || name == "" || err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--aux-address\" flag: want name=address", kv)
		}
		c, err := owner(a, "aux-address", func(*network.IPAMConfig) bool { return false })
		if err != nil {
			return nil, err
		}
		if c.AuxAddress == nil {
			c.AuxAddress = map[string]netip.Addr{}
		}
		c.AuxAddress[name] = a
	}
	return out, nil
}

func networkLsCmd(a *app) *cobra.Command {
	var quiet bool
	var format string
	var filter []string
	cmd := &cobra.Command{Use: "ls [OPTIONS]", Aliases: []string{"list"}, Short: "List networks", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		q, err := filterQuery(filter)
		if err != nil {
			return err
		}
		var list []network.Inspect
		if err := a.c.JSON(a.ctx, http.MethodGet, "/networks", q, nil, &list); err != nil {
			return apiError(err, 1)
		}
		slices.SortFunc(list, func(x, y network.Inspect) int { return strings.Compare(x.Name, y.Name) })
		if quiet {
			format = "{{.ID}}"
		}
		if format == "" {
			format = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
		}
		type row struct{ ID, Name, Driver, Scope, Internal, Labels string }
		var rows []any
		for _, n := range list {
			var labels []string
			for k, v := range n.Labels {
				labels = append(labels, k+"="+v)
			}
			rows = append(rows, row{ID: n.ID[:12], Name: n.Name, Driver: n.Driver, Scope: n.Scope,
				Internal: fmt.Sprint(n.Internal), Labels: strings.Join(labels, ",")})
		}
		header := map[string]string{"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Internal": "INTERNAL", "Labels": "LABELS"}
		return printRows(os.Stdout, format, header, rows)
	})
	f := cmd.Flags()
	f.BoolVarP(&quiet, "quiet", "q", false, "only display network IDs")
	f.StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	f.StringArrayVarP(&filter, "filter", "f", nil, "provide filter values (e.g. 'driver=bridge')")
	return cmd
}

func networkRmCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "rm NETWORK [NETWORK...]", Aliases: []string{"remove"}, Short: "Remove one or more networks", Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		return forEach(args, func(name string) error {
			return a.c.JSON(a.ctx, http.MethodDelete, "/networks/"+name, nil, nil, nil)
		})
	})
	return cmd
}

func networkPruneCmd(a *app) *cobra.Command {
	var force bool
	var filter []string
	cmd := &cobra.Command{Use: "prune [OPTIONS]", Short: "Remove all unused networks", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		if !force && !confirm("WARNING! This will remove all custom networks not used by at least one container.") {
			return nil
		}
		q, err := filterQuery(filter)
		if err != nil {
			return err
		}
		var r network.PruneReport
		if err := a.c.JSON(a.ctx, http.MethodPost, "/networks/prune", q, nil, &r); err != nil {
			return apiError(err, 1)
		}
		if len(r.NetworksDeleted) > 0 {
			fmt.Println("Deleted Networks:")
			for _, n := range r.NetworksDeleted {
				fmt.Println(n)
			}
		}
		return nil
	})
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.StringArrayVar(&filter, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	return cmd
}

func networkConnectCmd(a *app) *cobra.Command {
	var ip, ip6 string
	var aliases []string
	cmd := &cobra.Command{Use: "connect [OPTIONS] NETWORK CONTAINER", Short: "Connect a container to a network", Args: cobra.ExactArgs(2)}
	cmd.RunE = a.runE(func(args []string) error {
		es := &network.EndpointSettings{Aliases: aliases}
		var err error
		if es.IPAMConfig, err = endpointAddrs(ip, ip6); err != nil {
			return err
		}
		req := network.ConnectRequest{Container: args[1], EndpointConfig: es}
		if err := a.c.JSON(a.ctx, http.MethodPost, "/networks/"+args[0]+"/connect", nil, req, nil); err != nil {
			return apiError(err, 1)
		}
		return nil
	})
	f := cmd.Flags()
	f.StringVar(&ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	f.StringVar(&ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	f.StringArrayVar(&aliases, "alias", nil, "add network-scoped alias for the container")
	return cmd
}

func networkDisconnectCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{Use: "disconnect [OPTIONS] NETWORK CONTAINER", Short: "Disconnect a container from a network", Args: cobra.ExactArgs(2)}
	cmd.RunE = a.runE(func(args []string) error {
		req := network.DisconnectRequest{Container: args[1], Force: force}
		if err := a.c.JSON(a.ctx, http.MethodPost, "/networks/"+args[0]+"/disconnect", nil, req, nil); err != nil {
			return apiError(err, 1)
		}
		return nil
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the container to disconnect from a network")
	return cmd
}

// portCmd is `tent port CONTAINER [PRIVATE_PORT[/PROTO]]`.
func portCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "port CONTAINER [PRIVATE_PORT[/PROTO]]", Short: "List port mappings or a specific mapping for the container", Args: cobra.RangeArgs(1, 2)}
	cmd.RunE = a.runE(func(args []string) error {
		var c container.InspectResponse
		if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/"+args[0]+"/json", nil, nil, &c); err != nil {
			return apiError(err, 1)
		}
		var ports network.PortMap
		if c.NetworkSettings != nil {
			ports = c.NetworkSettings.Ports
		}
		if len(args) == 2 {
			want := args[1]
			if !strings.Contains(want, "/") {
				want += "/tcp"
			}
			p, err := network.ParsePort(want)
			if err != nil {
				return fmt.Errorf("invalid port %q: %v", args[1], err)
			}
			bindings, ok := ports[p]
			if !ok || len(bindings) == 0 {
				return statusError{code: 1, msg: fmt.Sprintf("Error: No public port '%s' published for %s", want, args[0])}
			}
			var lines []string
			for _, b := range bindings {
				lines = append(lines, net.JoinHostPort(b.HostIP.String(), b.HostPort))
			}
			printNatural(lines)
			return nil
		}
		var lines []string
		for p, bindings := range ports {
			for _, b := range bindings {
				lines = append(lines, fmt.Sprintf("%s -> %s", p, net.JoinHostPort(b.HostIP.String(), b.HostPort)))
			}
		}
		printNatural(lines)
		return nil
	})
	return cmd
}

// printNatural prints lines in natural order (runs of digits compared as
// numbers: "80/tcp" before "443/tcp"), as the docker CLI's port does.
func printNatural(lines []string) {
	slices.SortFunc(lines, naturalCompare)
	for _, l := range lines {
		fmt.Println(l)
	}
}

func naturalCompare(a, b string) int {
	for a != "" && b != "" {
		da, db := digitsPrefix(a), digitsPrefix(b)
		if da > 0 && db > 0 {
			na, nb := strings.TrimLeft(a[:da], "0"), strings.TrimLeft(b[:db], "0")
			if c := cmp.Or(cmp.Compare(len(na), len(nb)), strings.Compare(na, nb)); c != 0 {
				return c
			}
			a, b = a[da:], b[db:]
			continue
		}
		if a[0] != b[0] {
			return cmp.Compare(a[0], b[0])
		}
		a, b = a[1:], b[1:]
	}
	return cmp.Compare(len(a), len(b))
}

func digitsPrefix(s string) int {
	n := 0
	for n < len(s) && s[n] >= '0' && s[n] <= '9' {
		n++
	}
	return n
}
