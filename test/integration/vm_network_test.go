package integration

import (
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestVMNetworks: a VM on several networks is the container on each of
// them, connected before its start (as docker-compose does) and while it
// runs: reached by name and alias on each, its default route where
// dockerd puts a container's (the network whose name sorts first), a
// network disconnected unreachable and reconnected reachable again; what
// it cannot take is refused with nothing half-made.
func TestVMNetworks(t *testing.T) {
	requireVM(t)
	e := startTent(t)
	for _, n := range []string{"vnb", "vna", "vnc", "vnd", "vne"} {
		e.must(t, "network", "create", n)
	}
	e.must(t, "create", "--name", "svc", "--isolation", "vm", "--network", "vnb", "busybox", "sh", "-c",
		`while true; do echo svc-here | nc -l -p 80; done`)
	e.must(t, "network", "connect", "--alias", "api", "vna", "svc")
	e.must(t, "start", "svc")
	// reaches asks host's port 80 from a process container on net.
	reaches := func(net, host string) bool {
		out, _, _ := e.runIn(nil, "run", "--rm", "--network", net, "busybox", "nc", "-w", "2", host, "80")
		return out == "svc-here\n"
	}
	waitFor(t, "the VM by name on the network it was created on", func() bool { return reaches("vnb", "svc") })
	waitFor(t, "the VM by its alias on the network connected before its start", func() bool { return reaches("vna", "api") })
	gateway := func(n string) string {
		return strings.TrimSpace(e.must(t, "network", "inspect", "-f", "{{range .IPAM.Config}}{{.Gateway}}{{end}}", n))
	}
	defaultVia := func() string {
		for _, line := range strings.Split(e.must(t, "exec", "svc", "ip", "route"), "\n") {
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "default" {
				return f[2]
			}
		}
		return ""
	}
	if via, want := defaultVia(), gateway("vna"); via != want {
		t.Errorf("the VM's default route goes via %q, want vna's gateway %s (dockerd's choice)", via, want)
	}
	ipOn := func(n string) string {
		return strings.TrimSpace(e.must(t, "inspect", "-f", `{{(index .NetworkSettings.Networks "`+n+`").IPAddress}}`, "svc"))
	}
	if out := e.must(t, "exec", "svc", "ip", "-o", "-4", "addr", "show", "eth1"); !strings.Contains(out, " "+ipOn("vna")+"/") {
		t.Errorf("the guest's eth1 (vna, joined second), want %s:\n%s", ipOn("vna"), out)
	}

	// Connected while it runs.
	e.must(t, "network", "connect", "vnc", "svc")
	waitFor(t, "the VM on the network connected while it runs", func() bool { return reaches("vnc", "svc") })
	e.must(t, "network", "connect", "vnd", "svc")
	if _, errOut, code := e.runIn(nil, "network", "connect", "vne", "svc"); code == 0 || !strings.Contains(errOut, "4 networks at most") {
		t.Errorf("a fifth network for a VM: exit %d %q", code, errOut)
	}
	if nets := e.must(t, "inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, "svc"); nets != "vna vnb vnc vnd \n" {
		t.Errorf("the VM's networks: %q", nets)
	}

	// Disconnected while it runs: gone from that network, the default
	// route on the next network by name; reconnected: back.
	vnaIP := ipOn("vna")
	e.must(t, "network", "disconnect", "vna", "svc")
	if _, code := e.run("run", "--rm", "--network", "vna", "busybox", "ping", "-c1", "-W1", vnaIP); code == 0 {
		t.Errorf("the VM still answers at %s on a network it left", vnaIP)
	}
	if via, want := defaultVia(), gateway("vnb"); via != want {
		t.Errorf("after leaving vna the VM's default route goes via %q, want vnb's %s", via, want)
	}
	if out := e.must(t, "exec", "svc", "ip", "-o", "addr", "show", "eth1"); strings.Contains(out, "inet ") {
		t.Errorf("the guest's NIC of the network it left keeps addresses:\n%s", out)
	}
	e.must(t, "network", "connect", "--alias", "api", "vna", "svc")
	waitFor(t, "the VM reconnected", func() bool { return reaches("vna", "api") })
	if via, want := defaultVia(), gateway("vna"); via != want {
		t.Errorf("reconnected, the VM's default route goes via %q, want vna's %s", via, want)
	}

	// A paused guest cannot take a network: refused, nothing made.
	e.must(t, "network", "disconnect", "vnd", "svc")
	e.must(t, "pause", "svc")
	if _, errOut, code := e.runIn(nil, "network", "connect", "vnd", "svc"); code == 0 || !strings.Contains(errOut, "unpause it first") {
		t.Errorf("connecting a paused VM: exit %d %q", code, errOut)
	}
	e.must(t, "unpause", "svc")
	if nets := e.must(t, "inspect", "-f", `{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}`, "svc"); nets != "vna vnb vnc \n" {
		t.Errorf("the VM's networks after a refused connect: %q", nets)
	}
	if out := e.must(t, "exec", "svc", "ip", "-o", "-4", "addr"); strings.Count(out, " inet ") != 4 { // lo and three NICs
		t.Errorf("the guest's addresses after a refused connect:\n%s", out)
	}

	// Restarted, it is on all its networks again.
	e.must(t, "restart", "-t", "1", "svc")
	for _, n := range []string{"vna", "vnb", "vnc"} {
		waitFor(t, "the restarted VM on "+n, func() bool { return reaches(n, "svc") })
	}
	e.must(t, "rm", "-f", "svc")
	e.must(t, "network", "rm", "vna", "vnb", "vnc", "vnd", "vne")
}

// composeVMApp has a VM service on two networks between two process
// services, each on one of them: the VM is the only way between them.
const composeVMApp = `version: "2.4"
services:
  db:
    image: busybox:latest
    command: ["sh", "-c", "while true; do echo db-here | nc -l -p 5432; done"]
    networks: [back]
  web:
    image: busybox:latest
    isolation: vm
    command: ["sh", "-c", "while true; do (echo web-sees; echo | nc -w2 db 5432) | nc -l -p 80; done"]
    networks: [front, back]
    ports: ["127.0.0.1:18096:80"]
  client:
    image: busybox:latest
    command: ["sleep", "1000"]
    networks: [front]
networks:
  front: {}
  back: {}
`

// TestComposeVMService: docker-compose (1.29) brings up a VM service on
// two networks (it creates the container on one and connects the other
// before the start), reached from a service on one network and through
// its published port, reaching a service on the other.
func TestComposeVMService(t *testing.T) {
	requireVM(t)
	if _, err := exec.LookPath("docker-compose"); err != nil {
		t.Skip("docker-compose not installed (apt-get install docker-compose)")
	}
	e := startTent(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "docker-compose.yml"), []byte(composeVMApp), 0o644); err != nil {
		t.Fatal(err)
	}
	compose := e.composer(dir, "vmapp")
	if out, err := compose("up", "-d"); err != nil {
		t.Fatalf("up: %v\n%s", err, out)
	}
	t.Cleanup(func() { compose("down", "-v", "-t", "0") })
	want := "web-sees\ndb-here\n"
	waitFor(t, "the client asking the VM on the front network", func() bool {
		out, _ := compose("exec", "-T", "client", "nc", "-w3", "web", "80")
		return strings.HasSuffix(out, want) // after compose's own warnings
	})
	waitFor(t, "the VM's published port", func() bool {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:18096", 3*time.Second)
		if err != nil {
			return false
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn)
		return string(b) == want
	})
	if out, err := compose("down", "-v", "-t", "0"); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if ps := e.must(t, "ps", "-aq"); ps != "" {
		t.Fatalf("containers left after down: %s", ps)
	}
}
