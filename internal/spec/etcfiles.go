package spec

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
)

// A Link is a --link NAME:ALIAS target, running: its address on the
// network of the linking container's main endpoint, its exposed ports
// (lowest first) and its variables.
type Link struct {
	Alias, Name, ID, IP string
	Exposed             []netapi.Port
	Env                 []string
}

// HostsFile is a container's /etc/hosts as dockerd writes it.
type HostsFile struct {
	// Extra are --add-host entries (name, address).
	Extra [][2]string
	Links []Link
	// Hostname and Domainname name the container at IP, its main
	// endpoint's address ("" without a network: loopback), and at IP6,
	// its IPv6 address on a network with IPv6 ("": none).
	Hostname, Domainname, IP, IP6 string
	// HostNetwork: the host's own file, as with --network host.
	HostNetwork bool
	// Host is the host's /etc/hosts (read when HostNetwork).
	Host []byte
}

func (f HostsFile) String() string {
	if f.HostNetwork && f.Host != nil {
		return string(f.Host)
	}
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" +
		"fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n")
	for _, h := range f.Extra {
		b.WriteString(h[1] + "\t" + h[0] + "\n")
	}
	for _, l := range f.Links {
		names := l.Name + " " + l.ID[:12]
		if l.Alias != l.Name {
			names = l.Alias + " " + names
		}
		b.WriteString(l.IP + "\t" + names + "\n")
	}
	switch {
	case f.IP != "" && f.Hostname != "":
		name := f.Hostname
		if f.Domainname != "" {
			name = f.Hostname + "." + f.Domainname + " " + f.Hostname
		}
		b.WriteString(f.IP + "\t" + name + "\n")
		if f.IP6 != "" {
			b.WriteString(f.IP6 + "\t" + name + "\n")
		}
	case f.Hostname != "" && !f.HostNetwork:
		b.WriteString("127.0.1.1\t" + f.Hostname + "\n") // loopback only: the name still resolves
	}
	return b.String()
}

// LinkEnv are docker's variables of the links of the container name: ALIAS_NAME,
// ALIAS_PORT (the lowest exposed port), ALIAS_PORT_N_PROTO{,_ADDR,_PORT,
// _PROTO} per exposed port, ALIAS_ENV_X per variable of the target.
func LinkEnv(name string, links []Link) []string {
	var env []string
	for _, l := range links {
		p := strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(l.Alias))
		env = append(env, p+"_NAME=/"+name+"/"+l.Alias)
		for i, port := range l.Exposed {
			proto, num := string(port.Proto()), strconv.Itoa(int(port.Num()))
			url := proto + "://" + l.IP + ":" + num
			if i == 0 {
				env = append(env, p+"_PORT="+url)
			}
			k := p + "_PORT_" + num + "_" + strings.ToUpper(proto)
			env = append(env, k+"="+url, k+"_ADDR="+l.IP, k+"_PORT="+num, k+"_PROTO="+proto)
		}
		for _, kv := range l.Env {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "HOME" && k != "PATH" && k != "HOSTNAME" {
				env = append(env, p+"_ENV_"+k+"="+v)
			}
		}
	}
	return env
}

// ResolvConf is a container's /etc/resolv.conf, as dockerd writes it
// from the host's (host): on a user-defined network the engine's DNS
// server (engineDNS, the network's gateway); elsewhere the --dns servers, or the host's without loopback
// ones (unreachable from the container), or Google's if none is left;
// --dns-search and --dns-option replace the host's.
func ResolvConf(host []byte, hc *container.HostConfig, engineDNS string) string {
	var servers, search, options []string
	for _, line := range strings.Split(string(host), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			servers = append(servers, f[1])
		case "search", "domain":
			search = f[1:]
		case "options":
			options = append(options, f[1:]...)
		}
	}
	if hc.NetworkMode.IsHost() && len(hc.DNS) == 0 && len(hc.DNSSearch) == 0 && len(hc.DNSOptions) == 0 {
		return string(host)
	}
	if len(hc.DNSSearch) > 0 {
		search = hc.DNSSearch
		if len(search) == 1 && search[0] == "." {
			search = nil
		}
	}
	if len(hc.DNSOptions) > 0 {
		options = hc.DNSOptions
	}
	switch {
	case engineDNS != "":
		servers = []string{engineDNS}
	case len(hc.DNS) > 0:
		servers = nil
		for _, ip := range hc.DNS {
			servers = append(servers, ip.String())
		}
	default:
		kept := servers[:0]
		for _, s := range servers {
			if ip, err := netip.ParseAddr(s); err == nil && !ip.IsLoopback() {
				kept = append(kept, s)
			}
		}
		servers = kept
		if len(servers) == 0 && !hc.NetworkMode.IsNone() {
			servers = []string{"8.8.8.8", "8.8.4.4"}
		}
	}
	var b strings.Builder
	for _, s := range servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(search) > 0 {
		b.WriteString("search " + strings.Join(search, " ") + "\n")
	}
	if len(options) > 0 {
		b.WriteString("options " + strings.Join(options, " ") + "\n")
	}
	return b.String()
}
