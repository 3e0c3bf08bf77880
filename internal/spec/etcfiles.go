package spec

import (
	"cmp"
	"net/netip"
	"slices"
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

// LinkEnv are docker's variables of the links of the container name
// (on the default bridge), as dockerd 20.10 writes them, per link:
// ALIAS_PORT (the lowest exposed port, TCP first), ALIAS_PORT_N_PROTO_START/
// _END/_PORT_START/_PORT_END for a run of three or more consecutive
// port numbers (dockerd's rule: two are no run, and protocols are not
// compared), ALIAS_PORT_N_PROTO{,_ADDR,_PORT,_PROTO} per exposed port,
// ALIAS_NAME, ALIAS_ENV_X per variable of the target but HOME and PATH.
// ALIAS is the alias in upper case with "-" as "_".
func LinkEnv(name string, links []Link) []string {
	var env []string
	seen := map[string]bool{}
	add := func(k, v string) {
		if !seen[k] {
			seen[k] = true
			env = append(env, k+"="+v)
		}
	}
	for _, l := range links {
		p := strings.ToUpper(strings.ReplaceAll(l.Alias, "-", "_"))
		ports := slices.Clone(l.Exposed)
		notTCP := func(p netapi.Port) int {
			if p.Proto() == netapi.TCP {
				return 0
			}
			return 1
		}
		slices.SortFunc(ports, func(a, b netapi.Port) int {
			return cmp.Or(cmp.Compare(a.Num(), b.Num()), cmp.Compare(notTCP(a), notTCP(b)), cmp.Compare(a.Proto(), b.Proto()))
		})
		key := func(port netapi.Port) string {
			return p + "_PORT_" + strconv.Itoa(int(port.Num())) + "_" + strings.ToUpper(string(port.Proto()))
		}
		url := func(port netapi.Port) string {
			return string(port.Proto()) + "://" + l.IP + ":" + strconv.Itoa(int(port.Num()))
		}
		if len(ports) > 0 {
			add(p+"_PORT", url(ports[0]))
		}
		for i := 0; i < len(ports); {
			j := i
			for j+1 < len(ports) && ports[j+1].Num() == ports[j].Num()+1 {
				j++
			}
			if j < i+2 {
				i++
				continue
			}
			first, last := ports[i], ports[j]
			k := key(first)
			add(k+"_START", url(first))
			add(k+"_ADDR", l.IP)
			add(k+"_PROTO", string(first.Proto()))
			add(k+"_PORT_START", strconv.Itoa(int(first.Num())))
			k = p + "_PORT_" + strconv.Itoa(int(first.Num())) + "_" + strings.ToUpper(string(last.Proto()))
			add(k+"_END", url(last))
			add(k+"_PORT_END", strconv.Itoa(int(last.Num())))
			i = j + 1
		}
		for _, port := range ports {
			k := key(port)
			add(k, url(port))
			add(k+"_ADDR", l.IP)
			add(k+"_PORT", strconv.Itoa(int(port.Num())))
			add(k+"_PROTO", string(port.Proto()))
		}
		add(p+"_NAME", "/"+name+"/"+l.Alias)
		for _, kv := range l.Env {
			if k, v, ok := strings.Cut(kv, "="); ok && k != "HOME" && k != "PATH" {
				add(p+"_ENV_"+k, v)
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

// EngineMountpoints are where every container gets a mount of the
// engine's (the runtime makes them in the root when the image has none):
// no part of what the container changed (docker diff, commit, a build
// step's layer).
var EngineMountpoints = []string{"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/proc", "/sys", "/dev"}
