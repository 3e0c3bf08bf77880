package integration

import (
	"net"
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
