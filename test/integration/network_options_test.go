package integration

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestNetworkBridgeOptions: the bridge driver's options as dockerd
// honours them (seen by hand against dockerd 20.10): enable_icc=false
// keeps a network's containers from reaching each other (names still
// resolve, the host still reaches them), host_binding_ipv4 is where
// ports published without an address go, enable_ip_masquerade=false
// lets what leaves the network keep its source address (seen from a
// network namespace of the test's, as "outside"); a bad value is
// dockerd's error.
func TestNetworkBridgeOptions(t *testing.T) {
	e := startTent(t)
	e.must(t, "network", "create", "-o", "com.docker.network.bridge.enable_icc=false",
		"-o", "com.docker.network.bridge.host_binding_ipv4=127.0.0.1", "quiet")
	e.server(t, "quiet-a", 80, "--name", "qa", "--network", "quiet", "-p", "18400:80")
	e.must(t, "run", "-d", "--name", "qb", "--network", "quiet", "busybox", "sleep", "300")
	aIP := e.ipIn(t, "qa")
	if out, code := e.run("exec", "qb", "sh", "-c", "echo | nc -w2 "+aIP+" 80"); code == 0 || strings.Contains(out, "quiet-a") {
		t.Errorf("a container reached another on a network with icc off: %d %q", code, out)
	}
	if out := e.must(t, "exec", "qb", "nslookup", "qa"); !strings.Contains(out, aIP) {
		t.Errorf("names on a network with icc off:\n%s", out)
	}
	eventually(t, "the host to qa", func() error {
		got, err := dial(aIP + ":80")
		if err == nil && got != "quiet-a" {
			err = errString("got " + got)
		}
		return err
	})
	if got := e.must(t, "port", "qa"); got != "80/tcp -> 127.0.0.1:18400\n" {
		t.Errorf("a port published on a network with host_binding_ipv4=127.0.0.1: %q", got)
	}
	if got, err := dial("127.0.0.1:18400"); err != nil || got != "quiet-a" {
		t.Errorf("127.0.0.1:18400: %q %v", got, err)
	}
	// The same containers on a network with icc on reach each other.
	e.must(t, "network", "create", "loud")
	e.must(t, "network", "connect", "loud", "qa")
	e.must(t, "network", "connect", "loud", "qb")
	if out, _ := e.run("exec", "qb", "sh", "-c", "echo | nc -w2 qa.loud 80 || echo | nc -w2 "+e.ipInNet(t, "qa", "loud")+" 80"); !strings.Contains(out, "quiet-a") {
		t.Errorf("qb cannot reach qa on a network with icc on: %q", out)
	}

	// Masquerade: "outside" is a namespace behind a veth of the host's.
	outside := outsideNamespace(t, "10.160.0")
	e.must(t, "network", "create", "--subnet", "10.161.0.0/24", "-o", "com.docker.network.bridge.enable_ip_masquerade=false", "plain")
	e.must(t, "network", "create", "--subnet", "10.162.0.0/24", "masked")
	for _, c := range []struct{ net, want string }{{"plain", "10.161.0."}, {"masked", "10.160.0.1"}} {
		out := e.must(t, "run", "--rm", "--network", c.net, "busybox", "sh", "-c", "echo | nc -w2 "+outside+" 9000")
		if !strings.HasPrefix(strings.TrimSpace(out), c.want) {
			t.Errorf("from network %s the outside saw %q, want %s...", c.net, out, c.want)
		}
	}

	for _, c := range []struct{ opt, want string }{
		{"com.docker.network.bridge.enable_icc=bogus", `failed to parse com.docker.network.bridge.enable_icc value: bogus (strconv.ParseBool: parsing "bogus": invalid syntax)`},
		{"com.docker.network.bridge.host_binding_ipv4=nope", "failed to parse com.docker.network.bridge.host_binding_ipv4 value: nope (nil ip)"},
	} {
		if out, code := e.run("network", "create", "-o", c.opt, "bad"); code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("-o %s: %d %s, want %q", c.opt, code, out, c.want)
		}
	}
}

// ipInNet is a container's address on one network.
func (e *tentEngine) ipInNet(t *testing.T, name, network string) string {
	t.Helper()
	return strings.TrimSpace(e.must(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+network+`").IPAddress}}`, name))
}

// outsideNamespace makes a network namespace behind a veth of the host's
// (host PREFIX.1, namespace PREFIX.2, a default route back) where a
// server answers each TCP connection on port 9000 with the address it
// came from; it returns the namespace's address. All of it goes with the
// test.
func outsideNamespace(t *testing.T, prefix string) string {
	t.Helper()
	ns := "tent-outside"
	exec.Command("ip", "netns", "del", ns).Run()
	for _, args := range [][]string{
		{"netns", "add", ns},
		{"link", "add", "tnout0", "type", "veth", "peer", "name", "tnout1", "netns", ns},
		{"addr", "add", prefix + ".1/24", "dev", "tnout0"},
		{"link", "set", "tnout0", "up"},
		{"-n", ns, "addr", "add", prefix + ".2/24", "dev", "tnout1"},
		{"-n", ns, "link", "set", "tnout1", "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "route", "add", "default", "via", prefix + ".1"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v %s", args, err, out)
		}
	}
	peerd := goProgram(t, "peerd", `package main

import (
	"net"
	"os"
)

func main() {
	l, err := net.Listen("tcp", os.Args[1])
	if err != nil {
		panic(err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			panic(err)
		}
		host, _, _ := net.SplitHostPort(c.RemoteAddr().String())
		c.Write([]byte(host + "\n"))
		c.Close()
	}
}
`)
	srv := exec.Command("ip", "netns", "exec", ns, peerd, ":9000")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Process.Kill()
		srv.Wait()
		exec.Command("ip", "link", "del", "tnout0").Run()
		exec.Command("ip", "netns", "del", ns).Run()
	})
	time.Sleep(100 * time.Millisecond)
	return prefix + ".2"
}

// TestNetworkDaemonBridgeOptions: the daemon's --icc=false, --ip-masq=false
// and --ip are the default bridge's enable_icc, enable_ip_masquerade and
// host_binding_ipv4 (dockerd's flags), taken at a restart; --link there
// with icc off opens the linked container's exposed ports, as dockerd.
func TestNetworkDaemonBridgeOptions(t *testing.T) {
	e := startTent(t)
	e.stop()
	e.flags = []string{"--icc=false", "--ip-masq=false", "--ip", "127.0.0.1"}
	e.start()
	opts := `{{index .Options "com.docker.network.bridge.enable_icc"}} {{index .Options "com.docker.network.bridge.enable_ip_masquerade"}} {{index .Options "com.docker.network.bridge.host_binding_ipv4"}}`
	if got := strings.TrimSpace(e.must(t, "network", "inspect", "-f", opts, "bridge")); got != "false false 127.0.0.1" {
		t.Errorf("the default bridge's options: %q", got)
	}
	e.server(t, "default-a", 80, "--name", "da", "-p", "18500:80")
	aIP := e.ipIn(t, "da")
	if out, code := e.run("run", "--rm", "busybox", "sh", "-c", "echo | nc -w2 "+aIP+" 80"); code == 0 || strings.Contains(out, "default-a") {
		t.Errorf("a container reached another on the default bridge with --icc=false: %d %q", code, out)
	}
	if got := e.must(t, "port", "da"); got != "80/tcp -> 127.0.0.1:18500\n" {
		t.Errorf("a port published with --ip 127.0.0.1: %q", got)
	}
	// A link opens the linked container's exposed ports to its
	// container, and no others, as dockerd's icc exceptions.
	e.must(t, "run", "-d", "--name", "db", "--expose", "5432", "busybox", "sh", "-c",
		"(while true; do echo db-open | nc -l -p 5432; done) & while true; do echo db-closed | nc -l -p 5433; done")
	dbIP := e.ipIn(t, "db")
	out, _ := e.run("run", "--rm", "--link", "db:db", "busybox", "sh", "-c",
		"echo | nc -w2 db 5432; echo | nc -w2 "+dbIP+" 5433; echo | nc -w2 "+aIP+" 80; echo end")
	if !strings.Contains(out, "db-open") || strings.Contains(out, "db-closed") || strings.Contains(out, "default-a") || !strings.Contains(out, "end") {
		t.Errorf("--link with --icc=false: %q, want the linked container's exposed port alone", out)
	}
	// Started again without them: icc is on again, at once.
	e.stop()
	e.flags = nil
	e.start()
	if got := strings.TrimSpace(e.must(t, "network", "inspect", "-f", opts, "bridge")); got != "true true 0.0.0.0" {
		t.Errorf("the default bridge's options after a restart without the flags: %q", got)
	}
	if out, _ := e.run("run", "--rm", "busybox", "sh", "-c", "echo | nc -w2 "+aIP+" 80"); !strings.Contains(out, "default-a") {
		t.Errorf("icc on again, a container cannot reach another: %q", out)
	}
}
