package spec

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
)

func TestHostsFile(t *testing.T) {
	f := HostsFile{Extra: [][2]string{{"db.local", "10.0.0.9"}}, Hostname: "web", Domainname: "example.com", IP: "172.18.0.2",
		Links: []Link{{Alias: "cache", Name: "redis", ID: "0123456789abcdef", IP: "172.18.0.3"}}}
	got := f.String()
	for _, want := range []string{"127.0.0.1\tlocalhost\n", "10.0.0.9\tdb.local\n", "172.18.0.3\tcache redis 0123456789ab\n", "172.18.0.2\tweb.example.com web\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("hosts lacks %q:\n%s", want, got)
		}
	}
	if got := (HostsFile{Hostname: "v6", IP: "10.1.0.2", IP6: "fd00:1::2"}).String(); !strings.HasSuffix(got, "10.1.0.2\tv6\nfd00:1::2\tv6\n") {
		t.Errorf("an IPv6 network: %q", got)
	}
	if got := (HostsFile{Hostname: "solo"}).String(); !strings.HasSuffix(got, "127.0.1.1\tsolo\n") {
		t.Errorf("no network: %q", got)
	}
	if got := (HostsFile{Hostname: "h", HostNetwork: true, Host: []byte("1.2.3.4 host\n")}).String(); got != "1.2.3.4 host\n" {
		t.Errorf("host network: %q", got)
	}
}

// TestLinkEnv: the variables dockerd 20.10 gave a container of the
// default bridge started with --link db-1:my-db, db-1 exposing 5432,
// 6000-6002/udp, 7000 and 7001 with FOO=bar, PATH, HOME and EMPTY= set
// (seen by hand; `env | sort` there is this list sorted).
func TestLinkEnv(t *testing.T) {
	var exposed []netapi.Port
	for _, p := range []string{"7001/tcp", "6002/udp", "5432/tcp", "6000/udp", "7000/tcp", "6001/udp"} {
		exposed = append(exposed, netapi.MustParsePort(p))
	}
	env := LinkEnv("web", []Link{{Alias: "my-db", IP: "10.99.0.128", Exposed: exposed,
		Env: []string{"FOO=bar", "PATH=/bin", "HOME=/x", "EMPTY="}}})
	want := []string{
		"MY_DB_ENV_EMPTY=",
		"MY_DB_ENV_FOO=bar",
		"MY_DB_NAME=/web/my-db",
		"MY_DB_PORT=tcp://10.99.0.128:5432",
		"MY_DB_PORT_5432_TCP=tcp://10.99.0.128:5432",
		"MY_DB_PORT_5432_TCP_ADDR=10.99.0.128",
		"MY_DB_PORT_5432_TCP_PORT=5432",
		"MY_DB_PORT_5432_TCP_PROTO=tcp",
		"MY_DB_PORT_6000_UDP=udp://10.99.0.128:6000",
		"MY_DB_PORT_6000_UDP_ADDR=10.99.0.128",
		"MY_DB_PORT_6000_UDP_END=udp://10.99.0.128:6002",
		"MY_DB_PORT_6000_UDP_PORT=6000",
		"MY_DB_PORT_6000_UDP_PORT_END=6002",
		"MY_DB_PORT_6000_UDP_PORT_START=6000",
		"MY_DB_PORT_6000_UDP_PROTO=udp",
		"MY_DB_PORT_6000_UDP_START=udp://10.99.0.128:6000",
		"MY_DB_PORT_6001_UDP=udp://10.99.0.128:6001",
		"MY_DB_PORT_6001_UDP_ADDR=10.99.0.128",
		"MY_DB_PORT_6001_UDP_PORT=6001",
		"MY_DB_PORT_6001_UDP_PROTO=udp",
		"MY_DB_PORT_6002_UDP=udp://10.99.0.128:6002",
		"MY_DB_PORT_6002_UDP_ADDR=10.99.0.128",
		"MY_DB_PORT_6002_UDP_PORT=6002",
		"MY_DB_PORT_6002_UDP_PROTO=udp",
		"MY_DB_PORT_7000_TCP=tcp://10.99.0.128:7000",
		"MY_DB_PORT_7000_TCP_ADDR=10.99.0.128",
		"MY_DB_PORT_7000_TCP_PORT=7000",
		"MY_DB_PORT_7000_TCP_PROTO=tcp",
		"MY_DB_PORT_7001_TCP=tcp://10.99.0.128:7001",
		"MY_DB_PORT_7001_TCP_ADDR=10.99.0.128",
		"MY_DB_PORT_7001_TCP_PORT=7001",
		"MY_DB_PORT_7001_TCP_PROTO=tcp",
	}
	slices.Sort(env)
	if !slices.Equal(env, want) {
		t.Errorf("link env:\n%s\nwant\n%s", strings.Join(env, "\n"), strings.Join(want, "\n"))
	}
}

func TestResolvConf(t *testing.T) {
	host := []byte("nameserver 127.0.0.53\nnameserver 192.168.1.1\nsearch lan\noptions edns0\n")
	for _, tc := range []struct {
		name      string
		hc        container.HostConfig
		engineDNS string
		want      string
	}{
		{"bridge", container.HostConfig{}, "", "nameserver 192.168.1.1\nsearch lan\noptions edns0\n"},
		{"user network", container.HostConfig{}, "172.18.0.1", "nameserver 172.18.0.1\nsearch lan\noptions edns0\n"},
		{"--dns", container.HostConfig{DNS: []netip.Addr{netip.MustParseAddr("9.9.9.9")}, DNSSearch: []string{"."}, DNSOptions: []string{"ndots:2"}}, "", "nameserver 9.9.9.9\noptions ndots:2\n"},
		{"host", container.HostConfig{NetworkMode: "host"}, "", string(host)},
	} {
		if got := ResolvConf(host, &tc.hc, tc.engineDNS); got != tc.want {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
	if got := ResolvConf([]byte("nameserver 127.0.0.1\n"), &container.HostConfig{}, ""); got != "nameserver 8.8.8.8\nnameserver 8.8.4.4\n" {
		t.Errorf("only a loopback server: %q", got)
	}
}
