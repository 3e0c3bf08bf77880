package integration

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/network"
	"github.com/vishvananda/netlink"
)

// testBridge is the default bridge of the tests' daemons (their own, not
// a real tent0); its table is network.TableFor(testBridge).
const testBridge = "tentit0"

// checkNetworksGone checks, once the daemon has stopped and its
// containers and networks were removed, that no veth is left on the
// tests' bridges and no user network's bridge remains; then it removes
// the default bridge and the table, which outlive a daemon by design.
func (e *tentEngine) checkNetworksGone(t *testing.T) {
	t.Helper()
	leftovers := func() []string {
		links, _ := netlink.LinkList()
		masters := map[int]string{}
		for _, l := range links {
			if _, ok := l.(*netlink.Bridge); ok {
				masters[l.Attrs().Index] = l.Attrs().Name
			}
		}
		var out []string
		for _, l := range links {
			a := l.Attrs()
			if e.links[a.Name] {
				continue
			}
			if strings.HasPrefix(a.Name, "tent-") {
				out = append(out, "bridge "+a.Name)
			}
			if m := masters[a.MasterIndex]; l.Type() == "veth" && (m == testBridge || strings.HasPrefix(m, "tent-")) {
				out = append(out, "veth "+a.Name+" on "+m)
			}
		}
		return out
	}
	deadline := time.Now().Add(5 * time.Second) // namespaces (and their veths) go asynchronously
	for len(leftovers()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if l := leftovers(); len(l) > 0 {
		t.Errorf("network interfaces left behind: %v", l)
	}
	if l, err := netlink.LinkByName(testBridge); err == nil {
		netlink.LinkDel(l)
	}
	network.DeleteTable(network.TableFor(testBridge))
}

// linkNames are the host's network interfaces.
func linkNames() map[string]bool {
	out := map[string]bool{}
	links, _ := netlink.LinkList()
	for _, l := range links {
		out[l.Attrs().Name] = true
	}
	return out
}

// ipIn is the IPv4 address of eth0 in a running container.
func (e *tentEngine) ipIn(t *testing.T, name string) string {
	t.Helper()
	out := e.must(t, "exec", name, "ip", "-4", "-o", "addr", "show", "eth0")
	f := strings.Fields(out)
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			return strings.Split(f[i+1], "/")[0]
		}
	}
	t.Fatalf("no IPv4 address on eth0 of %s: %q", name, out)
	return ""
}

// server runs a container that answers each TCP connection on port with
// reply.
func (e *tentEngine) server(t *testing.T, reply string, port int, args ...string) {
	t.Helper()
	cmd := fmt.Sprintf("while true; do echo %s | nc -l -p %d; done", reply, port)
	e.must(t, append(append([]string{"run", "-d"}, args...), "busybox", "sh", "-c", cmd)...)
}

// dial reads what a TCP server at addr says, from the host.
func dial(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	b := make([]byte, 64)
	n, err := c.Read(b)
	return strings.TrimSpace(string(b[:n])), err
}

// eventually retries f for up to 5 s (a server's first listen, an
// address's first ARP).
func eventually(t *testing.T, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestNetworkDefaultBridge(t *testing.T) {
	e := startTent(t)
	var br struct {
		ID   string `json:"Id"`
		IPAM struct {
			Config []struct{ Subnet, Gateway string }
		}
	}
	if code := e.api(t, "GET", "/networks/bridge", "", &br); code != 200 || len(br.IPAM.Config) != 1 {
		t.Fatalf("inspect bridge: %d %+v", code, br)
	}
	subnet := netip.MustParsePrefix(br.IPAM.Config[0].Subnet)
	gw := br.IPAM.Config[0].Gateway
	e.must(t, "run", "-d", "--name", "one", "busybox", "sleep", "60")
	ip := e.ipIn(t, "one")
	if !subnet.Contains(netip.MustParseAddr(ip)) {
		t.Fatalf("address %s is not in the bridge's subnet %s", ip, subnet)
	}
	// What the docker CLI shows is what the container has.
	if got := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}} {{.NetworkSettings.Gateway}} {{.NetworkSettings.Networks.bridge.IPAddress}}", "one")); got != ip+" "+gw+" "+ip {
		t.Fatalf("inspect shows %q, the container has %s via %s", got, ip, gw)
	}
	if route := e.must(t, "exec", "one", "ip", "route"); !strings.Contains(route, "default via "+gw) {
		t.Fatalf("no default route via %s: %s", gw, route)
	}
	if hosts := e.must(t, "exec", "one", "cat", "/etc/hosts"); !strings.Contains(hosts, ip+"\t") {
		t.Fatalf("/etc/hosts does not name the container's address %s:\n%s", ip, hosts)
	}
	if resolv := e.must(t, "exec", "one", "cat", "/etc/resolv.conf"); strings.Contains(resolv, "nameserver 127.") {
		t.Fatalf("a loopback resolver, unreachable from the container:\n%s", resolv)
	}
	e.must(t, "run", "-d", "--name", "two", "--expose", "5432", "-e", "DBVAR=x", "busybox", "sleep", "60")
	ip2 := e.ipIn(t, "two")
	if ip2 == ip {
		t.Fatalf("two containers got %s", ip)
	}
	if out, code := e.run("exec", "one", "ping", "-c1", "-W2", ip2); code != 0 {
		t.Fatalf("one cannot reach two on the default bridge: %s", out)
	}
	// docker's default bridge resolves no container names.
	if out, code := e.run("exec", "one", "nslookup", "two"); code == 0 && strings.Contains(out, ip2) {
		t.Fatalf("the default bridge resolved a container name:\n%s", out)
	}
	// --link names the target in /etc/hosts.
	e.must(t, "run", "-d", "--name", "three", "--link", "two:db", "busybox", "sleep", "60")
	if out, code := e.run("exec", "three", "ping", "-c1", "-W2", "db"); code != 0 || !strings.Contains(out, ip2) {
		t.Fatalf("--link two:db: %s", out)
	}
	env := e.must(t, "exec", "three", "env")
	for _, want := range []string{"DB_NAME=/three/db", "DB_PORT=tcp://" + ip2 + ":5432", "DB_PORT_5432_TCP_ADDR=" + ip2, "DB_ENV_DBVAR=x"} {
		if !strings.Contains(env, want+"\n") {
			t.Fatalf("--link two:db: no %s in the environment:\n%s", want, env)
		}
	}
	// --add-host, with host-gateway: the default bridge's gateway.
	hosts := e.must(t, "run", "--rm", "--add-host", "myhost:10.1.2.3", "--add-host", "gw:host-gateway", "busybox", "cat", "/etc/hosts")
	if !strings.Contains(hosts, "10.1.2.3\tmyhost") || !strings.Contains(hosts, gw+"\tgw") {
		t.Fatalf("--add-host entries missing:\n%s", hosts)
	}
	// --dns, --dns-search, --dns-option replace the host's.
	resolv := e.must(t, "run", "--rm", "--dns", "10.9.9.9", "--dns-search", "example.test", "--dns-option", "ndots:2", "busybox", "cat", "/etc/resolv.conf")
	for _, want := range []string{"nameserver 10.9.9.9", "search example.test", "options ndots:2"} {
		if !strings.Contains(resolv, want) {
			t.Fatalf("resolv.conf lacks %q:\n%s", want, resolv)
		}
	}
	// none: loopback only; host: the host's interfaces.
	if out := e.must(t, "run", "--rm", "--network", "none", "busybox", "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("--network none has eth0:\n%s", out)
	}
	// container:NAME shares one's namespace.
	if got := e.ipInArgs(t, "run", "--rm", "--network", "container:one", "busybox", "ip", "-4", "-o", "addr", "show", "eth0"); got != ip {
		t.Fatalf("--network container:one has %q, one has %s", got, ip)
	}
}

// ipInArgs runs a command that prints `ip -o addr` and returns the
// address in it.
func (e *tentEngine) ipInArgs(t *testing.T, args ...string) string {
	t.Helper()
	f := strings.Fields(e.must(t, args...))
	for i, w := range f {
		if w == "inet" && i+1 < len(f) {
			return strings.Split(f[i+1], "/")[0]
		}
	}
	return ""
}

// TestNetworkDistributedSystem models a small system on one user network:
// three containers reach each other by name, alias and ID prefix; one is
// disconnected (the others lose it) and reconnected (they see it again);
// a container on another network reaches none of them.
func TestNetworkDistributedSystem(t *testing.T) {
	e := startTent(t)
	e.must(t, "network", "create", "--label", "app=shop", "shop")
	e.server(t, "db-here", 5432, "--name", "db", "--network", "shop", "--network-alias", "database")
	e.server(t, "broker-here", 5672, "--name", "broker", "--network", "shop")
	e.must(t, "run", "-d", "--name", "web", "--network", "shop", "busybox", "sleep", "300")
	read := func(from, host string, port int) (string, int) {
		return e.run("exec", from, "sh", "-c", fmt.Sprintf("echo | nc -w2 %s %d", host, port))
	}
	for _, c := range []struct {
		host string
		port int
		want string
	}{{"db", 5432, "db-here"}, {"database", 5432, "db-here"}, {"broker", 5672, "broker-here"}} {
		eventually(t, "web to "+c.host, func() error {
			if out, _ := read("web", c.host, c.port); !strings.Contains(out, c.want) {
				return fmt.Errorf("got %q", out)
			}
			return nil
		})
	}
	// On a user network a link is a name, without docker's variables.
	if out := e.must(t, "run", "--rm", "--network", "shop", "--link", "db:thedb", "busybox", "sh", "-c", "env; ping -c1 -W2 thedb"); strings.Contains(out, "THEDB_") || !strings.Contains(out, e.ipIn(t, "db")) {
		t.Errorf("--link on a user network:\n%s", out)
	}
	dbID := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "db"))
	if out, code := e.run("exec", "broker", "nslookup", dbID[:12]); code != 0 || !strings.Contains(out, e.ipIn(t, "db")) {
		t.Fatalf("the short ID %s does not resolve: %s", dbID[:12], out)
	}
	// The network's inspect lists its three containers.
	var n struct {
		Containers map[string]struct{ Name, IPv4Address string }
		Labels     map[string]string
	}
	e.api(t, "GET", "/networks/shop", "", &n)
	if len(n.Containers) != 3 || n.Labels["app"] != "shop" {
		t.Fatalf("network inspect: %+v", n)
	}
	if code := e.api(t, "DELETE", "/networks/shop", "", nil); code != http.StatusForbidden {
		t.Fatalf("removing a network with active endpoints: %d, want 403", code)
	}

	e.must(t, "network", "disconnect", "shop", "db")
	if out, _ := read("web", "db", 5432); strings.Contains(out, "db-here") {
		t.Fatalf("web still reaches db after the disconnect: %q", out)
	}
	if out, code := e.run("exec", "web", "nslookup", "db"); code == 0 {
		t.Fatalf("db still resolves after the disconnect:\n%s", out)
	}
	if out := e.must(t, "exec", "db", "ip", "-o", "link"); strings.Contains(out, "eth0") {
		t.Fatalf("db keeps its interface after the disconnect:\n%s", out)
	}
	e.must(t, "network", "connect", "--alias", "database", "shop", "db")
	eventually(t, "web to db after the reconnect", func() error {
		if out, _ := read("web", "database", 5432); !strings.Contains(out, "db-here") {
			return fmt.Errorf("got %q", out)
		}
		return nil
	})

	// A stopped container connected is on the network once it starts.
	e.must(t, "create", "--name", "late", "busybox", "sleep", "300")
	e.must(t, "network", "connect", "shop", "late")
	e.must(t, "start", "late")
	if out, code := e.run("exec", "web", "ping", "-c1", "-W2", "late"); code != 0 {
		t.Fatalf("a container connected while stopped is not on the network after its start:\n%s", out)
	}
	if out := e.must(t, "exec", "late", "ip", "-o", "link"); !strings.Contains(out, "eth0") || !strings.Contains(out, "eth1") {
		t.Fatalf("late should have eth0 (bridge) and eth1 (shop):\n%s", out)
	}
	// Another network: no way in.
	e.must(t, "network", "create", "other")
	e.must(t, "run", "-d", "--name", "outsider", "--network", "other", "busybox", "sleep", "300")
	if out, code := e.run("exec", "outsider", "ping", "-c1", "-W1", e.ipIn(t, "broker")); code == 0 {
		t.Fatalf("a container on another network reached broker:\n%s", out)
	}
	if out, code := e.run("exec", "outsider", "nslookup", "broker"); code == 0 && strings.Contains(out, "Address: 1") {
		t.Fatalf("a container on another network resolved broker:\n%s", out)
	}
	// An internal network has no way out (the bridge's gateway is the
	// host's only address it could reach, and the default bridge's is not).
	e.must(t, "network", "create", "--internal", "sealed")
	var br struct {
		IPAM struct{ Config []struct{ Gateway string } }
	}
	e.api(t, "GET", "/networks/bridge", "", &br)
	if out, code := e.run("run", "--rm", "--network", "sealed", "busybox", "ping", "-c1", "-W1", br.IPAM.Config[0].Gateway); code == 0 {
		t.Fatalf("an internal network reached the outside:\n%s", out)
	}
}

func TestNetworkPublishedPorts(t *testing.T) {
	e := startTent(t)
	e.server(t, "web-ok", 80, "--name", "web", "-p", "127.0.0.1:18080:80", "-p", "18081:80")
	if out := strings.TrimSpace(e.must(t, "port", "web", "80")); !strings.Contains(out, "127.0.0.1:18080") || !strings.Contains(out, "0.0.0.0:18081") {
		t.Fatalf("docker port: %q", out)
	}
	hostIP := hostAddress(t)
	for _, addr := range []string{"127.0.0.1:18080", "127.0.0.1:18081", hostIP + ":18081"} {
		eventually(t, "from the host to "+addr, func() error {
			got, err := dial(addr)
			if err == nil && got != "web-ok" {
				err = fmt.Errorf("got %q", got)
			}
			return err
		})
	}
	if _, err := dial(hostIP + ":18080"); err == nil {
		t.Fatalf("a port published on 127.0.0.1 answers on %s", hostIP)
	}
	// Hairpin: another container, through the host's address.
	if out, _ := e.run("run", "--rm", "busybox", "sh", "-c", "echo | nc -w2 "+hostIP+" 18081"); !strings.Contains(out, "web-ok") {
		t.Fatalf("a container cannot reach the published port through the host address: %q", out)
	}
	// The same host port again: docker's error, and nothing half-made.
	out, code := e.run("run", "-d", "--name", "web2", "-p", "18081:80", "busybox", "sleep", "60")
	if code == 0 || !strings.Contains(out, "port is already allocated") {
		t.Fatalf("second container on host port 18081: %d %s", code, out)
	}
	if st := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.State.Status}} {{.NetworkSettings.IPAddress}}", "web2")); st != "created" {
		t.Fatalf("the refused container: %q, want created with no address", st)
	}
	// A host process on the port: refused too.
	l, err := net.Listen("tcp4", "127.0.0.1:18099")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if out, code := e.run("run", "--rm", "-p", "127.0.0.1:18099:80", "busybox", "true"); code == 0 || !strings.Contains(out, "address already in use") {
		t.Fatalf("a port a host process holds: %d %s", code, out)
	}
	// On the host's network, published ports are discarded with dockerd's warning.
	var created struct{ Warnings []string }
	e.api(t, "POST", "/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"host","PortBindings":{"80/tcp":[{"HostPort":"18098"}]}}}`, &created)
	if len(created.Warnings) != 1 || !strings.Contains(created.Warnings[0], "discarded") {
		t.Fatalf("create on the host network with ports: warnings %q", created.Warnings)
	}
	// -P: the image's EXPOSE, on ephemeral ports.
	e.must(t, "run", "-d", "--name", "exposed", "-P", "--expose", "7000", "busybox", "sh", "-c", "while true; do echo seven | nc -l -p 7000; done")
	hp := strings.TrimSpace(e.must(t, "port", "exposed", "7000/tcp"))
	_, port, _ := strings.Cut(strings.Split(hp, "\n")[0], ":")
	eventually(t, "-P port "+hp, func() error {
		got, err := dial("127.0.0.1:" + port)
		if err == nil && got != "seven" {
			err = fmt.Errorf("got %q", got)
		}
		return err
	})
	// UDP: a datagram sent to the published port reaches the container
	// (busybox's nc has no -u here: a small server of the test's).
	e.must(t, "run", "-d", "--name", "udp", "-p", "127.0.0.1:18053:53/udp", "-v", udpServer(t)+":/udpd:ro", "busybox", "/udpd", ":53")
	if out := strings.TrimSpace(e.must(t, "port", "udp", "53/udp")); out != "127.0.0.1:18053" {
		t.Fatalf("docker port of 53/udp: %q", out)
	}
	e.sendUDP(t, "udp4", "127.0.0.1:18053", "ping-udp", "udp")

	// Once web is gone its ports are free again.
	e.must(t, "rm", "-f", "web", "web2")
	e.must(t, "run", "-d", "--name", "web3", "-p", "18081:80", "busybox", "sleep", "60")
}

// hostAddress is an IPv4 address of the host other than loopback.
func hostAddress(t *testing.T) string {
	addrs, _ := netlink.AddrList(nil, netlink.FAMILY_V4)
	for _, a := range addrs {
		l, err := netlink.LinkByIndex(a.LinkIndex)
		if err == nil && !a.IP.IsLoopback() && !strings.HasPrefix(l.Attrs().Name, "tent") {
			if _, ok := l.(*netlink.Bridge); !ok {
				return a.IP.String()
			}
		}
	}
	t.Skip("the host has no address but loopback")
	return ""
}

func TestNetworkBadInput(t *testing.T) {
	e := startTent(t)
	e.must(t, "network", "create", "--subnet", "10.123.0.0/24", "taken")
	for _, c := range []struct {
		method, path, body string
		want               int
		msg                string
	}{
		{"POST", "/networks/create", `{"Name":"taken"}`, 409, "already exists"},
		{"POST", "/networks/create", `{"Name":"x","IPAM":{"Config":[{"Subnet":"10.123.0.0/16"}]}}`, 403, "overlaps"},
		{"POST", "/networks/create", `{"Name":"x","IPAM":{"Config":[{"Subnet":"10.124.0.0/24","Gateway":"10.125.0.1"}]}}`, 400, "invalid gateway"},
		{"POST", "/networks/create", `{"Name":"bridge"}`, 403, "pre-defined"},
		{"POST", "/networks/create", `{"Name":"x","Driver":"overlay"}`, 404, "plugin not found"},
		{"DELETE", "/networks/bridge", "", 403, "pre-defined"},
		{"DELETE", "/networks/nosuch", "", 404, "not found"},
		{"POST", "/networks/nosuch/connect", `{"Container":"x"}`, 404, "not found"},
		{"POST", "/networks/taken/connect", `{"Container":"nosuch"}`, 404, "No such container"},
	} {
		var resp struct{ Message string }
		if code := e.api(t, c.method, c.path, c.body, &resp); code != c.want || !strings.Contains(resp.Message, c.msg) {
			t.Errorf("%s %s %s: %d %q, want %d %q", c.method, c.path, c.body, code, resp.Message, c.want, c.msg)
		}
	}
	if out, code := e.run("run", "--rm", "--network", "taken", "--ip", "10.99.0.5", "busybox", "true"); code == 0 || !strings.Contains(out, "10.99.0.5") {
		t.Errorf("--ip outside the subnet: %d %s", code, out)
	}
	if out, code := e.run("run", "--rm", "--network", "nosuch", "busybox", "true"); code == 0 || !strings.Contains(out, "network nosuch not found") {
		t.Errorf("run on a missing network: %d %s", code, out)
	}
	if out, code := e.run("run", "--rm", "--ip", "172.17.0.9", "busybox", "true"); code == 0 || !strings.Contains(out, "user specified IP address") {
		t.Errorf("--ip on the default bridge: %d %s", code, out)
	}
	// Nothing half-made: only bridge, host, none and taken.
	var list []struct{ Name string }
	e.api(t, "GET", "/networks", "", &list)
	if len(list) != 4 {
		t.Errorf("networks after refusals: %+v", list)
	}
	// --ip inside the subnet is honoured; the same address twice is not.
	e.must(t, "run", "-d", "--name", "fixed", "--network", "taken", "--ip", "10.123.0.50", "--mac-address", "02:42:0a:7b:00:99", "busybox", "sleep", "60")
	if got := e.ipIn(t, "fixed"); got != "10.123.0.50" {
		t.Fatalf("--ip 10.123.0.50 gave %s", got)
	}
	if mac := e.must(t, "exec", "fixed", "cat", "/sys/class/net/eth0/address"); strings.TrimSpace(mac) != "02:42:0a:7b:00:99" {
		t.Fatalf("--mac-address gave %s", mac)
	}
	if out, code := e.run("run", "--rm", "--network", "taken", "--ip", "10.123.0.50", "busybox", "true"); code == 0 || !strings.Contains(out, "in use") {
		t.Errorf("an address twice: %d %s", code, out)
	}
}

// TestNetworkOutlivesDaemon: containers keep their networking when the
// daemon is killed; the new daemon answers names again, keeps the
// leases (no address handed out twice) and the published ports.
func TestNetworkOutlivesDaemon(t *testing.T) {
	e := startTent(t)
	e.must(t, "network", "create", "app")
	e.server(t, "db-here", 5432, "--name", "db", "--network", "app", "-p", "127.0.0.1:18090:5432")
	e.must(t, "run", "-d", "--name", "web", "--network", "app", "busybox", "sleep", "300")
	dbIP := e.ipIn(t, "db")
	e.kill9()
	// With no daemon: the data path still works.
	eventually(t, "the published port with no daemon", func() error {
		_, err := dial("127.0.0.1:18090")
		return err
	})
	e.start()
	if out, code := e.run("exec", "web", "nslookup", "db"); code != 0 || !strings.Contains(out, dbIP) {
		t.Fatalf("db does not resolve after the daemon's restart:\n%s", out)
	}
	e.must(t, "run", "-d", "--name", "late", "--network", "app", "busybox", "sleep", "300")
	if ip := e.ipIn(t, "late"); ip == dbIP || ip == e.ipIn(t, "web") {
		t.Fatalf("address %s handed out twice after a restart", ip)
	}
	if got, err := dial("127.0.0.1:18090"); err != nil || got != "db-here" {
		t.Fatalf("published port after restart: %q %v", got, err)
	}
	// A container that ended while no daemon ran gives its lease back.
	e.must(t, "stop", "-t", "0", "late")
	var n struct{ Containers map[string]any }
	e.api(t, "GET", "/networks/app", "", &n)
	if len(n.Containers) != 2 {
		t.Fatalf("endpoints after a stop: %v", n.Containers)
	}
	if !network.TableExists(network.TableFor(testBridge)) {
		t.Fatal("the engine's table is missing")
	}
}

// TestNetworkTentCLI drives the same through tent's own client.
func TestNetworkTentCLI(t *testing.T) {
	e := startTent(t)
	id := strings.TrimSpace(e.tentOK(t, "network", "create", "--subnet", "10.131.0.0/24", "--label", "k=v", "backend"))
	if len(id) != 64 {
		t.Fatalf("network create printed %q", id)
	}
	if ls := e.tentOK(t, "network", "ls"); !strings.Contains(ls, "backend") || !strings.Contains(ls, "bridge") || !strings.Contains(ls, "NETWORK ID") {
		t.Fatalf("network ls:\n%s", ls)
	}
	if got := e.tentOK(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Labels.k}}", "backend"); got != "10.131.0.0/24 v\n" {
		t.Fatalf("network inspect: %q", got)
	}
	e.tentOK(t, "run", "-d", "--name", "api", "--network", "backend", "--ip", "10.131.0.10", "--network-alias", "svc",
		"-p", "127.0.0.1:18097:80", "busybox", "sh", "-c", "while true; do echo api-ok | nc -l -p 80; done")
	if out := e.tentOK(t, "run", "--rm", "--network", "backend", "busybox", "nslookup", "svc"); !strings.Contains(out, "10.131.0.10") {
		t.Fatalf("nslookup svc:\n%s", out)
	}
	if out := e.tentOK(t, "port", "api"); out != "80/tcp -> 127.0.0.1:18097\n" {
		t.Fatalf("tent port: %q", out)
	}
	eventually(t, "tent -p 127.0.0.1:18097:80", func() error {
		got, err := dial("127.0.0.1:18097")
		if err == nil && got != "api-ok" {
			err = errString("got " + got)
		}
		return err
	})
	if _, errOut, code := e.tent(nil, "network", "rm", "backend"); code == 0 || !strings.Contains(errOut, "active endpoints") {
		t.Fatalf("network rm in use: exit %d %s", code, errOut)
	}
	e.tentOK(t, "network", "disconnect", "backend", "api")
	e.tentOK(t, "network", "rm", "backend")
	if out := e.tentOK(t, "network", "ls", "-q"); strings.Count(out, "\n") != 3 {
		t.Fatalf("networks after rm:\n%s", out)
	}
}

// udpServer is a static program that prints each datagram it gets on the
// address it is given (built in the test's temporary directory).
func udpServer(t *testing.T) string {
	return goProgram(t, "udpd", `package main

import (
	"net"
	"os"
)

func main() {
	c, err := net.ListenPacket("udp", os.Args[1])
	if err != nil {
		panic(err)
	}
	buf := make([]byte, 65536)
	for {
		n, _, err := c.ReadFrom(buf)
		if err != nil {
			panic(err)
		}
		os.Stdout.Write(buf[:n])
	}
}
`)
}

// goProgram builds the static program of one Go file, src, named name,
// in the test's temporary directory, and returns its path.
func goProgram(t *testing.T, name, src string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-o", name, "main.go")
	cmd.Dir, cmd.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GO111MODULE=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", name, err, out)
	}
	return filepath.Join(dir, name)
}

// sendUDP sends msg to addr (network udp4 or udp6) until the logs of
// the container name (a udpServer) show it.
func (e *tentEngine) sendUDP(t *testing.T, network, addr, msg, name string) {
	t.Helper()
	eventually(t, "a datagram to "+addr+"/udp", func() error {
		c, err := net.Dial(network, addr)
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte(msg + "\n")); err != nil {
			return err
		}
		time.Sleep(100 * time.Millisecond)
		if out := e.out("logs", name); !strings.Contains(out, msg) {
			return fmt.Errorf("the container got %q", out)
		}
		return nil
	})
}
