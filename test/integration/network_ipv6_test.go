package integration

import (
	"net"
	"os/exec"
	"strings"
	"testing"
)

// TestNetworkIPv6: a network made with --ipv6 and an IPv6 subnet gives
// its containers an IPv6 address too, as dockerd 20.10 does (checked by
// hand against it: the same inspect fields, /etc/hosts lines, first
// address after the gateway): they reach each other over IPv6 by name
// (AAAA records of the engine's DNS), --ip6 is honoured, the host
// reaches them, another network's containers do not, and bad input gets
// dockerd's refusals. The tent CLI makes such a network too (repeatable
// --subnet, --ip6).
func TestNetworkIPv6(t *testing.T) {
	e := startTent(t)
	e.must(t, "network", "create", "--ipv6", "--subnet", "10.141.0.0/24", "--subnet", "fd00:141::/64", "six")
	var n struct {
		EnableIPv6 bool
		IPAM       struct {
			Config []struct{ Subnet, Gateway string }
		}
	}
	e.api(t, "GET", "/networks/six", "", &n)
	// As dockerd 20.10's: a gateway that was not asked for is not shown.
	if !n.EnableIPv6 || len(n.IPAM.Config) != 2 || n.IPAM.Config[1].Subnet != "fd00:141::/64" || n.IPAM.Config[1].Gateway != "" {
		t.Fatalf("network inspect: %+v", n)
	}
	e.server(t, "db-here", 5432, "--name", "db", "--network", "six")
	e.must(t, "run", "-d", "--name", "web", "--hostname", "web", "--network", "six", "--ip6", "fd00:141::99", "busybox", "sleep", "300")

	f := `{{with index .NetworkSettings.Networks "six"}}{{.GlobalIPv6Address}}/{{.GlobalIPv6PrefixLen}} {{.IPv6Gateway}}{{end}}`
	if got := strings.TrimSpace(e.must(t, "inspect", "-f", f, "db")); got != "fd00:141::2/64 fd00:141::1" {
		t.Errorf("db's IPv6 settings: %q", got)
	}
	if out := e.must(t, "exec", "web", "ip", "-6", "-o", "addr", "show", "eth0", "scope", "global"); !strings.Contains(out, "fd00:141::99/64") {
		t.Errorf("--ip6 fd00:141::99 gave:\n%s", out)
	}
	if out := e.must(t, "exec", "web", "cat", "/etc/hosts"); !strings.Contains(out, "fd00:141::99\tweb\n") {
		t.Errorf("web's /etc/hosts lacks its IPv6 address:\n%s", out)
	}
	if out := e.must(t, "exec", "web", "nslookup", "-type=aaaa", "db"); !strings.Contains(out, "fd00:141::2") {
		t.Errorf("db's AAAA record:\n%s", out)
	}
	if out, code := e.run("exec", "web", "ping", "-6", "-c1", "-W2", "db"); code != 0 {
		t.Errorf("web cannot reach db over IPv6 by name:\n%s", out)
	}
	eventually(t, "the host to db over IPv6", func() error {
		got, err := dial(net.JoinHostPort("fd00:141::2", "5432"))
		if err == nil && got != "db-here" {
			err = errString("got " + got)
		}
		return err
	})
	var netInspect struct {
		Containers map[string]struct{ Name, IPv6Address string }
	}
	e.api(t, "GET", "/networks/six", "", &netInspect)
	for _, c := range netInspect.Containers {
		if c.Name == "web" && c.IPv6Address != "fd00:141::99/64" {
			t.Errorf("network inspect of web: %+v", c)
		}
	}

	// Another IPv6 network (made with tent's CLI): no way in over IPv6.
	e.tentOK(t, "network", "create", "--ipv6", "--subnet", "fd00:142::/64", "--gateway", "fd00:142::fe", "--subnet", "10.142.0.0/24", "other6")
	if got := e.tentOK(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}};{{end}}", "other6"); got != "10.142.0.0/24 <no value>;fd00:142::/64 fd00:142::fe;\n" {
		t.Errorf("the gateways asked for: %q", got)
	}
	out := e.tentOK(t, "run", "--rm", "--network", "other6", "--ip6", "fd00:142::7", "busybox", "ip", "-6", "-o", "addr", "show", "eth0", "scope", "global")
	if !strings.Contains(out, "fd00:142::7/64") {
		t.Errorf("tent run --ip6:\n%s", out)
	}
	if out, code := e.run("run", "--rm", "--network", "other6", "busybox", "ping", "-6", "-c1", "-W1", "fd00:141::2"); code == 0 {
		t.Errorf("a container on another network reached db over IPv6:\n%s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"network", "create", "--ipv6", "nopool"}, "non-overlapping IPv6 address pool"},
		{[]string{"network", "create", "--ipv6", "--subnet", "fd00:141:0:0::/56", "overlap"}, "overlaps"},
		{[]string{"network", "create", "--subnet", "fd00:143::/64", "nov6flag"}, "needs --ipv6"},
		{[]string{"run", "--rm", "--network", "six", "--ip6", "fd00:999::1", "busybox", "true"}, "fd00:999::1"},
		{[]string{"run", "--rm", "--network", "six", "--ip6", "fd00:141::99", "busybox", "true"}, "in use"},
		{[]string{"run", "--rm", "--network", "bridge", "--ip6", "fd00:141::5", "busybox", "true"}, "user specified IP address"},
	} {
		if out, code := e.run(c.args...); code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d %s, want %q", c.args, code, out, c.want)
		}
	}
	var list []struct{ Name string }
	e.api(t, "GET", "/networks", "", &list)
	if len(list) != 5 {
		t.Errorf("networks after refusals (bridge, host, none, six, other6): %+v", list)
	}
}

// TestNetworkPublishedPortsIPv6: `-p 8080:80` publishes on 0.0.0.0 and
// :: on one port, as dockerd 20.10 does (seen by hand: inspect, ps and
// port show both bindings); `-p [::1]:...` only there; the IPv6 bindings
// reach a container that has IPv4 alone (a relay, as docker's userland
// proxy), TCP and UDP, clash as docker's do, come back after the daemon
// is killed and started again, and are free once the container is gone.
func TestNetworkPublishedPortsIPv6(t *testing.T) {
	if l, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skip("the host has no IPv6 loopback:", err)
	} else {
		l.Close()
	}
	e := startTent(t)
	e.server(t, "web-ok", 80, "--name", "web", "-p", "18181:80", "-p", "[::1]:18182:80")
	want := "0.0.0.0:18181->80/tcp, [::]:18181->80/tcp, [::1]:18182->80/tcp"
	if got := strings.TrimSpace(e.must(t, "ps", "--filter", "name=web", "--format", "{{.Ports}}")); got != want {
		t.Errorf("docker ps ports: %q, want %q", got, want)
	}
	if got := strings.TrimSpace(e.tentOK(t, "ps", "--filter", "name=web", "--format", "{{.Ports}}")); got != want {
		t.Errorf("tent ps ports: %q, want %q", got, want)
	}
	for _, cli := range []func(*testing.T, ...string) string{e.must, e.tentOK} { // lines in natural order
		if got := cli(t, "port", "web", "80"); got != "0.0.0.0:18181\n[::1]:18182\n[::]:18181\n" {
			t.Errorf("port web 80: %q", got)
		}
		if got := cli(t, "port", "web"); got != "80/tcp -> 0.0.0.0:18181\n80/tcp -> [::1]:18182\n80/tcp -> [::]:18181\n" {
			t.Errorf("port web: %q", got)
		}
	}
	for _, addr := range []string{"[::1]:18181", "[::1]:18182", "127.0.0.1:18181"} {
		eventually(t, "from the host to "+addr, func() error {
			got, err := dial(addr)
			if err == nil && got != "web-ok" {
				err = errString("got " + got)
			}
			return err
		})
	}
	if _, err := dial("127.0.0.1:18182"); err == nil {
		t.Error("a port published on [::1] answers on 127.0.0.1")
	}
	// Clashes, docker's words; nothing half-made.
	for _, c := range []struct{ p, want string }{
		{"18181:80", "Bind for 0.0.0.0:18181 failed: port is already allocated"},
		{"[::]:18181:80", "Bind for [::]:18181 failed: port is already allocated"},
		{"[::1]:18182:80", "Bind for [::1]:18182 failed: port is already allocated"},
	} {
		if out, code := e.run("run", "--rm", "-p", c.p, "busybox", "true"); code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("-p %s again: %d %s, want %q", c.p, code, out, c.want)
		}
	}
	l, err := net.Listen("tcp6", "[::1]:18183")
	if err != nil {
		t.Fatal(err)
	}
	if out, code := e.run("run", "--rm", "-p", "[::1]:18183:80", "busybox", "true"); code == 0 || !strings.Contains(out, "address already in use") {
		t.Errorf("a port a host process holds on [::1]: %d %s", code, out)
	}
	l.Close()
	// 127.0.0.1 and ::1 are two bindings of one port.
	e.server(t, "two-ok", 80, "--name", "two", "-p", "127.0.0.1:18184:80", "-p", "[::1]:18184:81")
	// -P: one ephemeral port, both families.
	e.must(t, "run", "-d", "--name", "exposed", "-P", "--expose", "7000", "busybox", "sleep", "300")
	if got := strings.Fields(e.must(t, "port", "exposed", "7000")); len(got) != 2 || !strings.HasPrefix(got[1], "[::]:") || strings.TrimPrefix(got[0], "0.0.0.0:") != strings.TrimPrefix(got[1], "[::]:") {
		t.Errorf("-P bindings: %q, want one port on 0.0.0.0 and ::", got)
	}
	// UDP through [::1].
	e.must(t, "run", "-d", "--name", "udp", "-p", "18153:53/udp", "-v", udpServer(t)+":/udpd:ro", "busybox", "/udpd", ":53")
	e.sendUDP(t, "udp6", "[::1]:18153", "ping-udp6", "udp")

	// The relays are the daemon's: a daemon killed and started again
	// relays again.
	e.kill9()
	e.start()
	eventually(t, "[::1]:18181 after the daemon's restart", func() error {
		got, err := dial("[::1]:18181")
		if err == nil && got != "web-ok" {
			err = errString("got " + got)
		}
		return err
	})
	e.must(t, "rm", "-f", "web")
	for _, addr := range []string{"[::]:18181", "[::1]:18182"} {
		l, err := net.Listen("tcp6", addr)
		if err != nil {
			t.Errorf("%s once web is gone: %v", addr, err)
			continue
		}
		l.Close()
	}
}

// TestNetworkDefaultBridgeIPv6: the daemon's --ipv6 --fixed-cidr-v6 (and
// --fixed-cidr) give the default bridge's containers IPv6 addresses, as
// dockerd 20.10 does (seen by hand: the MAC address in the subnet's
// last 48 bits, the subnet's first address the gateway, inspect's IPAM
// configs); the default bridge takes changed settings at a restart, but
// keeps its own while containers of the last start use it; --ipv6
// without a subnet is dockerd's error.
func TestNetworkDefaultBridgeIPv6(t *testing.T) {
	e := startTent(t)
	e.stop()
	e.flags = []string{"--bip", "10.151.0.1/24", "--fixed-cidr", "10.151.0.128/25", "--ipv6", "--fixed-cidr-v6", "fd00:151::/64"}
	e.start()
	got := strings.TrimSpace(e.must(t, "network", "inspect", "-f", "{{.EnableIPv6}} {{range .IPAM.Config}}{{.Subnet}} {{.IPRange}} {{.Gateway}};{{end}}", "bridge"))
	if want := "true 10.151.0.0/24 10.151.0.128/25 10.151.0.1;fd00:151::/64  ;"; got != want {
		t.Errorf("the default bridge: %q, want %q", got, want)
	}
	e.server(t, "bridge6-ok", 80, "--name", "web", "--hostname", "web")
	got = strings.TrimSpace(e.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.MacAddress}} {{.NetworkSettings.GlobalIPv6Address}}/{{.NetworkSettings.GlobalIPv6PrefixLen}} {{.NetworkSettings.IPv6Gateway}}", "web"))
	if want := "10.151.0.128 02:42:0a:97:00:80 fd00:151::242:a97:80/64 fd00:151::1"; got != want {
		t.Errorf("a container on it: %q, want %q", got, want)
	}
	if out := e.must(t, "exec", "web", "cat", "/etc/hosts"); !strings.Contains(out, "fd00:151::242:a97:80\tweb\n") {
		t.Errorf("/etc/hosts lacks the IPv6 address:\n%s", out)
	}
	if out, code := e.run("exec", "web", "ping", "-6", "-c1", "-W2", "fd00:151::1"); code != 0 {
		t.Errorf("the IPv6 gateway does not answer:\n%s", out)
	}
	eventually(t, "the host to web over IPv6", func() error {
		got, err := dial("[fd00:151::242:a97:80]:80")
		if err == nil && got != "bridge6-ok" {
			err = errString("got " + got)
		}
		return err
	})
	// Started again without the flags while web runs: nothing moves.
	e.stop()
	e.flags = nil
	e.start()
	if got := strings.TrimSpace(e.must(t, "network", "inspect", "-f", "{{.EnableIPv6}}", "bridge")); got != "true" {
		t.Errorf("the default bridge changed under a running container: EnableIPv6 %s", got)
	}
	if _, err := dial("[fd00:151::242:a97:80]:80"); err != nil {
		t.Errorf("web over IPv6 after a restart: %v", err)
	}
	// Once it is gone, the next start applies them: IPv4 alone, and the
	// bridge's IPv6 address is taken off.
	e.must(t, "rm", "-f", "web")
	e.stop()
	e.start()
	if got := strings.TrimSpace(e.must(t, "network", "inspect", "-f", "{{.EnableIPv6}} {{len .IPAM.Config}}", "bridge")); got != "false 1" {
		t.Errorf("the default bridge after the flags went: %q, want IPv4 alone", got)
	}
	if out, _ := exec.Command("ip", "-6", "addr", "show", "dev", testBridge, "scope", "global").CombinedOutput(); strings.Contains(string(out), "fd00:151::1") {
		t.Errorf("the bridge keeps its IPv6 address:\n%s", out)
	}
	// Bad flags: dockerd's words, the daemon does not start.
	for _, c := range []struct {
		flags []string
		want  string
	}{
		{[]string{"--ipv6"}, "IPv6 is enabled for the default bridge, but no subnet is configured. Specify an IPv6 subnet using --fixed-cidr-v6"},
		{[]string{"--ipv6", "--fixed-cidr-v6", "10.0.0.0/8"}, "want an IPv6 subnet"},
		{[]string{"--fixed-cidr", "10.152.0.0/24", "--bip", "10.151.0.1/24"}, "is not a range of the default bridge's subnet"},
	} {
		args := append([]string{"daemon", "--data-root", t.TempDir(), "--exec-root", t.TempDir(), "-H", "unix://" + t.TempDir() + "/s.sock", "--bridge", testBridge}, c.flags...)
		out, err := exec.Command(tentBin(), args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), c.want) {
			t.Errorf("daemon %v: %v\n%s\nwant %q", c.flags, err, out, c.want)
		}
	}
}
