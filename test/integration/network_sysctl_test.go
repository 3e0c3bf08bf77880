package integration

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestNetworkSysctlsLikeDocker holds tent to dockerd 20.10 on the network
// sysctls of a container with a namespace of its own: any user may bind
// a low port and ping, and IPv6 is off unless a network of the
// container has it (then on for lo and that network's interface, also
// when connected later) or the user turns it on with --sysctl; a sysctl
// of eth0 finds it; a container in another's namespace or the host's
// changes nothing there.
func TestNetworkSysctlsLikeDocker(t *testing.T) {
	_, _, engines, images := startPair(t)
	// What a container sees: the sysctls, its IPv6 addresses' scopes, and
	// whether user 1000 can listen on port 80.
	const probe = `for f in all default lo eth0 eth1; do [ -e /proc/sys/net/ipv6/conf/$f ] && printf "$f=%s " $(cat /proc/sys/net/ipv6/conf/$f/disable_ipv6); done
echo "ports=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start) ping=$(cat /proc/sys/net/ipv4/ping_group_range | tr '\t' ' ')"
echo "inet6: $(ip -6 addr | grep -o 'scope [a-z]*' | tr '\n' ' ')"`
	const bind = `timeout 1 nc -l -p 80 2>&1; echo "bind: $?"`
	hostPorts, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Skipf("no ip_unprivileged_port_start here: %v", err)
	}
	results := map[string][]string{}
	for i, name := range []string{"docker", "tent"} {
		d, img := engines[name], images[name]
		d.must(t, "network", "create", "sys4")
		d.must(t, "network", "create", "--ipv6", "--subnet", fmt.Sprintf("fd00:5a%d::/64", i), "sys6")
		var seen []string
		see := func(what, out string) { seen = append(seen, what+": "+strings.Join(strings.Fields(out), " ")) }
		see("own namespace", d.must(t, "run", "--rm", "--network", "sys4", img, "sh", "-c", probe))
		see("port 80 as nobody", d.must(t, "run", "--rm", "--network", "sys4", "--user", "65534", img, "sh", "-c", bind))
		see("on an IPv6 network", d.must(t, "run", "--rm", "--network", "sys6", img, "sh", "-c", probe))
		see("no network", d.must(t, "run", "--rm", "--network", "none", img, "sh", "-c", probe))
		see("IPv6 by --sysctl", d.must(t, "run", "--rm", "--network", "sys4", "--sysctl", "net.ipv6.conf.all.disable_ipv6=0", img, "sh", "-c", probe))
		see("a user's value wins", d.must(t, "run", "--rm", "--network", "sys4", "--sysctl", "net.ipv4.ip_unprivileged_port_start=555", img,
			"cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"))
		// The interface is there when the sysctls are applied (the engine
		// wires it during the create, as dockerd's prestart hook).
		see("a sysctl of eth0", d.must(t, "run", "--rm", "--network", "sys4", "--sysctl", "net.ipv4.conf.eth0.rp_filter=2", img,
			"cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter"))
		d.must(t, "run", "-d", "--name", "donor", "--network", "sys4", "--sysctl", "net.ipv4.ip_unprivileged_port_start=555", img, "sleep", "300")
		see("another's namespace", d.must(t, "run", "--rm", "--network", "container:donor", img, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"))
		d.must(t, "network", "connect", "sys6", "donor")
		see("an IPv6 network connected", d.must(t, "exec", "donor", "sh", "-c", probe))
		got := strings.TrimSpace(d.must(t, "run", "--rm", "--network", "host", img, "cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"))
		see("the host's namespace", fmt.Sprint(got == strings.TrimSpace(string(hostPorts))))
		d.must(t, "rm", "-f", "donor")
		d.must(t, "network", "rm", "sys4", "sys6")
		results[name] = seen
	}
	if fmt.Sprint(results["tent"]) != fmt.Sprint(results["docker"]) {
		t.Errorf("tent and dockerd differ:\n tent   %q\n docker %q", results["tent"], results["docker"])
	}
	// And what they both should say.
	want := map[int]string{
		0: "own namespace: all=1 default=1 lo=1 eth0=1 ports=0 ping=0 2147483647 inet6:",
		1: "port 80 as nobody: Terminated bind: 143", // listening until timeout ends it
		2: "on an IPv6 network: all=1 default=1 lo=0 eth0=0 ports=0 ping=0 2147483647 inet6: scope host scope global scope link",
	}
	for i, w := range want {
		if got := results["tent"][i]; got != w {
			t.Errorf("tent: got %q, want %q", got, w)
		}
	}
}
