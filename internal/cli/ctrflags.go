package cli

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// ctrFlags are the flags of create and run.
type ctrFlags struct {
	name, workdir, user, entrypoint, hostname, memory, network, restart string
	pid, ipc, uts, isolation, runtime                                   string
	detachKeys                                                          string
	env, envFiles, labels, capAdd, capDrop, securityOpt, ulimits, tmpfs []string
	volumes, mounts                                                     []string
	publish, expose, aliases, addHosts, dns, dnsSearch, dnsOptions      []string
	links                                                               []string
	ip, ip6, mac                                                        string
	publishAll                                                          bool
	cpus                                                                float64
	pidsLimit                                                           int64
	readOnly, privileged, init, tty, interactive                        bool
}

func (f *ctrFlags) add(fs *pflag.FlagSet) {
	fs.SetInterspersed(false)
	fs.StringVar(&f.name, "name", "", "assign a name to the container")
	fs.StringArrayVarP(&f.env, "env", "e", nil, "set environment variables")
	fs.StringArrayVar(&f.envFiles, "env-file", nil, "read in a file of environment variables")
	fs.StringVarP(&f.workdir, "workdir", "w", "", "working directory inside the container")
	fs.StringVarP(&f.user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	fs.StringVar(&f.entrypoint, "entrypoint", "", "overwrite the default ENTRYPOINT of the image")
	fs.StringVarP(&f.hostname, "hostname", "h", "", "container host name")
	fs.StringArrayVarP(&f.labels, "label", "l", nil, "set metadata on a container")
	fs.StringVarP(&f.memory, "memory", "m", "", "memory limit")
	fs.Float64Var(&f.cpus, "cpus", 0, "number of CPUs")
	fs.Int64Var(&f.pidsLimit, "pids-limit", 0, "tune container pids limit (-1 for unlimited)")
	fs.BoolVar(&f.readOnly, "read-only", false, "mount the container's root filesystem as read only")
	fs.StringArrayVar(&f.capAdd, "cap-add", nil, "add Linux capabilities")
	fs.StringArrayVar(&f.capDrop, "cap-drop", nil, "drop Linux capabilities")
	fs.BoolVar(&f.privileged, "privileged", false, "give extended privileges to this container")
	fs.StringArrayVar(&f.securityOpt, "security-opt", nil, "security options (seccomp=unconfined|<file>, no-new-privileges)")
	fs.BoolVar(&f.init, "init", false, "run an init inside the container that forwards signals and reaps processes")
	fs.StringArrayVar(&f.ulimits, "ulimit", nil, "ulimit options (name=soft[:hard])")
	fs.StringArrayVar(&f.tmpfs, "tmpfs", nil, "mount a tmpfs directory (path[:options])")
	fs.StringArrayVarP(&f.volumes, "volume", "v", nil, "bind mount a volume or host path ([name|/host/path:]/container/path[:ro])")
	fs.StringArrayVar(&f.mounts, "mount", nil, "attach a filesystem mount (type=volume|bind|tmpfs,source=...,target=...[,readonly])")
	fs.StringVar(&f.network, "network", "", "connect a container to a network (bridge, none, host, container:NAME, or a network's name)")
	fs.StringArrayVarP(&f.publish, "publish", "p", nil, "publish a container's port(s) to the host ([ip:][hostPort:]containerPort[/proto])")
	fs.BoolVarP(&f.publishAll, "publish-all", "P", false, "publish all exposed ports to random ports")
	fs.StringArrayVar(&f.expose, "expose", nil, "expose a port or a range of ports")
	fs.StringVar(&f.ip, "ip", "", "IPv4 address (e.g., 172.30.100.104)")
	fs.StringVar(&f.ip6, "ip6", "", "IPv6 address (e.g., 2001:db8::33)")
	fs.StringVar(&f.mac, "mac-address", "", "container MAC address (e.g., 92:d0:c6:0a:29:33)")
	fs.StringArrayVar(&f.aliases, "network-alias", nil, "add network-scoped alias for the container")
	fs.StringArrayVar(&f.addHosts, "add-host", nil, "add a custom host-to-IP mapping (host:ip)")
	fs.StringArrayVar(&f.dns, "dns", nil, "set custom DNS servers")
	fs.StringArrayVar(&f.dnsSearch, "dns-search", nil, "set custom DNS search domains")
	fs.StringArrayVar(&f.dnsOptions, "dns-option", nil, "set DNS options")
	fs.StringArrayVar(&f.links, "link", nil, "add link to another container (name:alias)")
	fs.StringVar(&f.pid, "pid", "", "PID namespace to use (host, or container:NAME)")
	fs.StringVar(&f.ipc, "ipc", "", "IPC mode to use (private, shareable, none, host, or container:NAME)")
	fs.StringVar(&f.uts, "uts", "", "UTS namespace to use (host)")
	fs.StringVar(&f.isolation, "isolation", "", "container isolation technology (default, or vm: the image booted as a VM)")
	fs.StringVar(&f.runtime, "runtime", "", "runtime to use for this container (tent, or tent-vm)")
	fs.StringVar(&f.restart, "restart", "no", "restart policy: no, always, unless-stopped, on-failure[:n]")
	fs.BoolVarP(&f.tty, "tty", "t", false, "allocate a pseudo-TTY")
	fs.BoolVarP(&f.interactive, "interactive", "i", false, "keep STDIN open even if not attached")
}

// config turns the flags into the create request.
func (f *ctrFlags) config(cmd *cobra.Command, image string, args []string, attach bool) (*container.CreateRequest, error) {
	cfg := &container.Config{
		Image: image, Cmd: args, Env: f.env, WorkingDir: f.workdir, User: f.user, Hostname: f.hostname,
		Tty: f.tty, OpenStdin: f.interactive, StdinOnce: f.interactive && attach,
		AttachStdin: f.interactive && attach, AttachStdout: attach, AttachStderr: attach,
		Labels: map[string]string{},
	}
	for _, file := range f.envFiles {
		vars, err := readEnvFile(file)
		if err != nil {
			return nil, err
		}
		cfg.Env = append(vars, cfg.Env...)
	}
	for i, kv := range cfg.Env {
		if !strings.Contains(kv, "=") { // -e NAME takes the value from here
			if v, ok := os.LookupEnv(kv); ok {
				cfg.Env[i] = kv + "=" + v
			}
		}
	}
	if cmd.Flags().Changed("entrypoint") {
		cfg.Entrypoint = []string{f.entrypoint}
	}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		cfg.Labels[k] = v
	}
	hc := &container.HostConfig{
		ReadonlyRootfs: f.readOnly, CapAdd: f.capAdd, CapDrop: f.capDrop, Privileged: f.privileged,
		NetworkMode: container.NetworkMode(f.network), Tmpfs: map[string]string{},
		PidMode: container.PidMode(f.pid), IpcMode: container.IpcMode(f.ipc), UTSMode: container.UTSMode(f.uts),
		Isolation: container.Isolation(f.isolation), Runtime: f.runtime,
		AutoRemove: cmd.Flags().Lookup("rm") != nil && cmd.Flags().Lookup("rm").Value.String() == "true",
	}
	if cmd.Flags().Changed("init") {
		hc.Init = &f.init
	}
	for _, v := range f.volumes {
		if strings.Contains(v, ":") {
			hc.Binds = append(hc.Binds, v)
		} else { // -v /path: an anonymous volume
			if cfg.Volumes == nil {
				cfg.Volumes = map[string]struct{}{}
			}
			cfg.Volumes[v] = struct{}{}
		}
	}
	for _, spec := range f.mounts {
		m, err := parseMount(spec)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--mount\" flag: %v", spec, err)
		}
		hc.Mounts = append(hc.Mounts, m)
	}
	if f.memory != "" {
		n, err := units.RAMInBytes(f.memory)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for --memory: %v", f.memory, err)
		}
		hc.Memory = n
	}
	if f.cpus != 0 {
		hc.NanoCPUs = int64(f.cpus * 1e9)
	}
	if f.pidsLimit != 0 {
		hc.PidsLimit = &f.pidsLimit
	}
	for _, o := range f.securityOpt {
		if v, ok := strings.CutPrefix(o, "seccomp="); ok && v != "unconfined" {
			b, err := os.ReadFile(v) // sent inline, as the docker CLI does
			if err != nil {
				return nil, fmt.Errorf("opening seccomp profile (%s) failed: %v", v, err)
			}
			o = "seccomp=" + string(b)
		}
		hc.SecurityOpt = append(hc.SecurityOpt, o)
	}
	for _, u := range f.ulimits {
		ul, err := units.ParseUlimit(u)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for --ulimit: %v", u, err)
		}
		hc.Ulimits = append(hc.Ulimits, ul)
	}
	for _, t := range f.tmpfs {
		path, opts, _ := strings.Cut(t, ":")
		hc.Tmpfs[path] = opts
	}
	name, count, _ := strings.Cut(f.restart, ":")
	hc.RestartPolicy.Name = container.RestartPolicyMode(name)
	if count != "" {
		n, err := strconv.Atoi(count)
		if err != nil {
			return nil, fmt.Errorf("invalid restart policy %q", f.restart)
		}
		hc.RestartPolicy.MaximumRetryCount = n
	}
	nc, err := f.networking(cfg, hc)
	if err != nil {
		return nil, err
	}
	return &container.CreateRequest{Config: cfg, HostConfig: hc, NetworkingConfig: nc}, nil
}

// networking puts the network flags into the request, as the docker CLI
// does: ports in HostConfig, the endpoint's address, MAC and aliases
// under the network mode's name.
func (f *ctrFlags) networking(cfg *container.Config, hc *container.HostConfig) (*network.NetworkingConfig, error) {
	hc.PublishAllPorts, hc.Links, hc.ExtraHosts, hc.DNSSearch, hc.DNSOptions = f.publishAll, f.links, f.addHosts, f.dnsSearch, f.dnsOptions
	for _, d := range f.dns {
		ip, err := netip.ParseAddr(d)
		if err != nil {
			return nil, fmt.Errorf("invalid argument %q for \"--dns\" flag: %s is not an ip address", d, d)
		}
		hc.DNS = append(hc.DNS, ip)
	}
	for _, e := range f.expose {
		ports, err := parsePorts(e)
		if err != nil {
			return nil, fmt.Errorf("invalid range format for --expose: %s, error: %v", e, err)
		}
		for _, p := range ports {
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = network.PortSet{}
			}
			cfg.ExposedPorts[p] = struct{}{}
		}
	}
	for _, spec := range f.publish {
		if err := publish(cfg, hc, spec); err != nil {
			return nil, err
		}
	}
	if f.ip == "" && f.ip6 == "" && f.mac == "" && len(f.aliases) == 0 {
		return nil, nil
	}
	es := &network.EndpointSettings{Aliases: f.aliases}
	var err error
	if es.IPAMConfig, err = endpointAddrs(f.ip, f.ip6); err != nil {
		return nil, err
	}
	if f.mac != "" {
		if err := es.MacAddress.UnmarshalText([]byte(f.mac)); err != nil {
			return nil, fmt.Errorf("%s is not a valid mac address", f.mac)
		}
	}
	name := f.network
	if name == "" {
		name = "default"
	}
	return &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{name: es}}, nil
}

// parsePorts reads PORT[-END][/proto].
func parsePorts(s string) ([]network.Port, error) {
	pr, err := network.ParsePortRange(s)
	if err != nil {
		return nil, err
	}
	var out []network.Port
	for p := range pr.All() {
		out = append(out, p)
	}
	return out, nil
}

// publish reads one -p: [ip:][hostPort[-end]:]containerPort[-end][/proto].
func publish(cfg *container.Config, hc *container.HostConfig, spec string) error {
	bad := func(why string) error {
		return fmt.Errorf("invalid argument %q for \"-p, --publish\" flag: %s", spec, why)
	}
	rest, proto, _ := strings.Cut(spec, "/")
	if proto == "" {
		proto = "tcp"
	}
	var hostIP, hostPort, ctrPort string
	if strings.HasPrefix(rest, "[") { // [v6]:host:ctr
		end := strings.Index(rest, "]")
		if end < 0 {
			return bad("invalid IP address")
		}
		hostIP, rest = rest[1:end], strings.TrimPrefix(rest[end+1:], ":")
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 1:
		ctrPort = parts[0]
	case len(parts) == 2:
		hostPort, ctrPort = parts[0], parts[1]
	case len(parts) == 3 && hostIP == "":
		hostIP, hostPort, ctrPort = parts[0], parts[1], parts[2]
	default:
		return bad("too many colons")
	}
	ports, err := parsePorts(ctrPort + "/" + proto)
	if err != nil {
		return bad(err.Error())
	}
	var ip netip.Addr
	if hostIP != "" {
		if ip, err = netip.ParseAddr(hostIP); err != nil {
			return bad("invalid IP address: " + hostIP)
		}
	}
	var hostPorts []string
	if hostPort != "" {
		lo, hi, isRange := strings.Cut(hostPort, "-")
		l, err1 := strconv.Atoi(lo)
		h, err2 := strconv.Atoi(hi)
		switch {
		case err1 != nil || isRange && err2 != nil:
			return bad("invalid hostPort: " + hostPort)
		case isRange && len(ports) > 1 && h-l+1 != len(ports):
			return bad("invalid ranges specified for container and host Ports")
		case isRange && len(ports) > 1:
			for i := range ports {
				hostPorts = append(hostPorts, strconv.Itoa(l+i))
			}
		default:
			hostPorts = []string{hostPort}
		}
	}
	if hc.PortBindings == nil {
		hc.PortBindings = network.PortMap{}
	}
	if cfg.ExposedPorts == nil {
		cfg.ExposedPorts = network.PortSet{}
	}
	for i, p := range ports {
		b := network.PortBinding{HostIP: ip}
		if len(hostPorts) == 1 {
			b.HostPort = hostPorts[0]
		} else if len(hostPorts) > 1 {
			b.HostPort = hostPorts[i]
		}
		hc.PortBindings[p] = append(hc.PortBindings[p], b)
		cfg.ExposedPorts[p] = struct{}{}
	}
	return nil
}

func readEnvFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !strings.Contains(line, "=") {
			if v, ok := os.LookupEnv(line); ok {
				line += "=" + v
			}
		}
		out = append(out, line)
	}
	return out, sc.Err()
}

// endpointAddrs are --ip and --ip6 ("": not given) as an endpoint's
// IPAM config (nil if neither is given).
func endpointAddrs(ip4, ip6 string) (*network.EndpointIPAMConfig, error) {
	if ip4 == "" && ip6 == "" {
		return nil, nil
	}
	var c network.EndpointIPAMConfig
	if ip4 != "" {
		ip, err := netip.ParseAddr(ip4)
		if err != nil || !ip.Is4() {
			return nil, fmt.Errorf("invalid argument %q for \"--ip\" flag: invalid IPv4 address", ip4)
		}
		c.IPv4Address = ip
	}
	if ip6 != "" {
		ip, err := netip.ParseAddr(ip6)
		if err != nil || !ip.Is6() || ip.Is4In6() {
			return nil, fmt.Errorf("invalid argument %q for \"--ip6\" flag: invalid IPv6 address", ip6)
		}
		c.IPv6Address = ip
	}
	return &c, nil
}
