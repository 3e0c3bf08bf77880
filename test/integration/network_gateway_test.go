package integration

import (
	"fmt"
	"strings"
	"testing"
)

// TestNetworkGatewayLikeDocker holds tent to dockerd on a container with
// several networks: which one its default route goes through (dockerd:
// the network whose name sorts first, whichever was joined first; it
// moves on connect and disconnect of a running container), and each
// network's gateway in inspect.
func TestNetworkGatewayLikeDocker(t *testing.T) {
	_, _, engines, images := startPair(t)
	results := map[string][]string{}
	for _, name := range []string{"docker", "tent"} {
		d := engines[name]
		for _, n := range []string{"gwb", "gwa", "gwc"} {
			d.must(t, "network", "create", n)
		}
		// The default route's gateway, by its network's name.
		via := func(ctr string) string {
			out := d.must(t, "exec", ctr, "ip", "route")
			gw := ""
			for _, line := range strings.Split(out, "\n") {
				if f := strings.Fields(line); len(f) >= 3 && f[0] == "default" {
					gw = f[2]
				}
			}
			for _, n := range []string{"gwa", "gwb", "gwc"} {
				if gw != "" && strings.TrimSpace(d.must(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", n)) == gw {
					return n
				}
			}
			return "none (" + gw + ")"
		}
		var seen []string
		d.must(t, "run", "-d", "--name", "multi", "--network", "gwb", images[name], "sleep", "300")
		d.must(t, "network", "connect", "gwa", "multi")
		seen = append(seen, "after connecting gwa: "+via("multi"))
		// Each network's gateway in inspect, not only the route's.
		gws := d.must(t, "inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}}:{{if $v.Gateway}}set{{end}} {{end}}`, "multi")
		seen = append(seen, "inspect: "+strings.TrimSpace(gws))
		d.must(t, "network", "disconnect", "gwb", "multi")
		seen = append(seen, "after disconnecting gwb: "+via("multi"))
		d.must(t, "network", "connect", "gwc", "multi")
		seen = append(seen, "after connecting gwc: "+via("multi"))
		d.must(t, "network", "disconnect", "gwa", "multi")
		seen = append(seen, "after disconnecting gwa: "+via("multi"))
		// Connected before its start (as docker-compose does).
		d.must(t, "create", "--name", "later", "--network", "gwb", images[name], "sleep", "300")
		d.must(t, "network", "connect", "gwa", "later")
		d.must(t, "start", "later")
		seen = append(seen, "connected before start: "+via("later"))
		d.must(t, "rm", "-f", "multi", "later")
		d.must(t, "network", "rm", "gwa", "gwb", "gwc")
		results[name] = seen
	}
	want := []string{"after connecting gwa: gwa", "inspect: gwa:set gwb:set", "after disconnecting gwb: gwa",
		"after connecting gwc: gwa", "after disconnecting gwa: gwc", "connected before start: gwa"}
	for name, seen := range results {
		if fmt.Sprint(seen) != fmt.Sprint(want) {
			t.Errorf("%s:\n got %q\nwant %q", name, seen, want)
		}
	}
}

// TestNetworkAuxAddressesLikeDocker: --aux-address keeps addresses from
// containers (the next free one skips them, --ip of one is refused),
// inspect lists them with their subnet, and the same bad input fails on
// both engines.
func TestNetworkAuxAddressesLikeDocker(t *testing.T) {
	_, _, engines, images := startPair(t)
	for _, name := range []string{"docker", "tent"} {
		d := engines[name]
		d.must(t, "network", "create", "--subnet", "10.231.0.0/24", "--aux-address", "r1=10.231.0.2", "--aux-address", "r2=10.231.0.3", "auxnet")
		if out := d.must(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.AuxAddress}}{{end}}", "auxnet"); out != "10.231.0.0/24 map[r1:10.231.0.2 r2:10.231.0.3]\n" {
			t.Errorf("%s: inspect of a network with auxiliary addresses: %q", name, out)
		}
		if out := d.must(t, "run", "--rm", "--network", "auxnet", images[name], "sh", "-c", "ip -o -4 addr show eth0 | awk '{print $4}'"); out != "10.231.0.4/24\n" {
			t.Errorf("%s: the first container's address %q, want 10.231.0.4/24", name, out)
		}
		if _, errOut, code := d.runIn(nil, "run", "--rm", "--network", "auxnet", "--ip", "10.231.0.2", images[name], "true"); code == 0 || !strings.Contains(strings.ToLower(errOut), "already in use") {
			t.Errorf("%s: --ip of an auxiliary address: exit %d %q", name, code, errOut)
		}
		for _, bad := range [][]string{
			{"--subnet", "10.232.0.0/24", "--aux-address", "r=10.233.0.2"},
			{"--aux-address", "r=10.233.0.2"},
			{"--subnet", "10.232.0.0/24", "--aux-address", "r=10.232.0.1"},
		} {
			if _, code := d.run(append(append([]string{"network", "create"}, bad...), "auxbad")...); code == 0 {
				t.Errorf("%s: network create %v succeeded", name, bad)
				d.run("network", "rm", "auxbad")
			}
		}
		d.must(t, "network", "rm", "auxnet")
	}
}

// TestNetworkConnectRefusalsLikeDocker: what connect and disconnect
// refuse, in dockerd 20.10's words, on both engines.
func TestNetworkConnectRefusalsLikeDocker(t *testing.T) {
	_, _, engines, images := startPair(t)
	for _, name := range []string{"docker", "tent"} {
		d := engines[name]
		d.must(t, "network", "create", "refnet")
		d.must(t, "create", "--name", "isolated", "--network", "none", images[name], "true")
		d.must(t, "create", "--name", "onhost", "--network", "host", images[name], "true")
		d.must(t, "create", "--name", "bridged", "--network", "refnet", images[name], "true")
		for _, c := range []struct {
			args []string
			want string
		}{
			{[]string{"connect", "refnet", "isolated"}, "container cannot be connected to multiple networks with one of the networks in private (none) mode"},
			{[]string{"connect", "refnet", "onhost"}, "container sharing network namespace with another container or host cannot be connected to any other network"},
			{[]string{"connect", "host", "bridged"}, "container cannot be disconnected from host network or connected to host network"},
			{[]string{"connect", "none", "bridged"}, "container cannot be connected to multiple networks with one of the networks in private (none) mode"},
			{[]string{"disconnect", "bridge", "bridged"}, "is not connected to"},
		} {
			if _, errOut, code := d.runIn(nil, append([]string{"network"}, c.args...)...); code == 0 || !strings.Contains(errOut, c.want) {
				t.Errorf("%s: network %v: exit %d %q, want %q", name, c.args, code, errOut, c.want)
			}
		}
		d.must(t, "rm", "isolated", "onhost", "bridged")
		d.must(t, "network", "rm", "refnet")
	}
}
