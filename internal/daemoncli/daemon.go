// Package daemoncli is tentd's command line: the daemon's flags and
// config file, its listeners, and its shut-down. It lives apart from the
// client (internal/cli) so that the tent CLI binary links none of the
// daemon's packages and starts faster.
package daemoncli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/client"
	"github.com/tent-project/tent/internal/daemon"
	"github.com/tent-project/tent/internal/logfile"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/server"
	"github.com/tent-project/tent/internal/task/ocibin"
	"github.com/tent-project/tent/internal/version"
)

// The daemon is what the server serves.
var _ server.Backend = (*daemon.Daemon)(nil)

// Main runs tentd with args (without the program name) and returns the
// exit status.
func Main(args []string) int {
	cmd := daemonCmd()
	cmd.SetArgs(args)
	if err := cmd.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tentd:", err)
		return 1
	}
	return 0
}

// daemonOpts are `tent daemon`'s settings; the config file uses the same
// names as the flags (as dockerd's daemon.json does).
type daemonOpts struct {
	DataRoot     string   `json:"data-root"`
	ExecRoot     string   `json:"exec-root"`
	Hosts        []string `json:"hosts"`
	LogLevel     string   `json:"log-level"`
	CgroupParent string   `json:"cgroup-parent"`
	TLSCert      string   `json:"tlscert"`
	TLSKey       string   `json:"tlskey"`
	TLSCACert    string   `json:"tlscacert"`
	TLSVerify    bool     `json:"tlsverify"`
	Insecure     []string `json:"insecure-registries"`
	Init         bool     `json:"init"`
	InitPath     string   `json:"init-path"`
	Bridge       string   `json:"bridge"`
	BIP          string   `json:"bip"`
	FixedCIDR    string   `json:"fixed-cidr"`
	IPv6         bool     `json:"ipv6"`
	FixedCIDRv6  string   `json:"fixed-cidr-v6"`
	// ICC, IPMasq and IP are the default bridge's enable_icc,
	// enable_ip_masquerade and host_binding_ipv4 (dockerd's --icc,
	// --ip-masq, --ip); nil in the file: not set there.
	ICC    *bool  `json:"icc"`
	IPMasq *bool  `json:"ip-masq"`
	IP     string `json:"ip"`
	MTU    int    `json:"mtu"`
	// Experimental: the daemon says it has docker's experimental features
	// on, which is what the docker CLI asks before it offers its
	// checkpoint verbs (tent serves checkpoints either way).
	Experimental bool `json:"experimental"`
	// Pools are dockerd's default-address-pools: base=CIDR,size=N on the
	// command line, {"base": ..., "size": ...} in the file.
	Pools     []addressPool `json:"default-address-pools"`
	poolFlags []string
	LogDriver string  `json:"log-driver"`
	LogOpts   logOpts `json:"log-opts"`
	logFlags  []string
	// Runtimes are OCI runtime binaries containers may run with
	// (--runtime), as dockerd's: name=path on the command line
	// (--add-runtime), {"path": ..., "runtimeArgs": [...]} in the file.
	Runtimes       map[string]runtimeOpts `json:"runtimes"`
	runtimeFlags   []string
	DefaultRuntime string `json:"default-runtime"`
	// VMTemplates: VMs start from templates (docs/vm.md); nil in the
	// file: not set there.
	VMTemplates *bool `json:"vm-templates"`
}

// runtimeOpts are a runtime's settings in the config file.
type runtimeOpts struct {
	Path        string   `json:"path"`
	RuntimeArgs []string `json:"runtimeArgs"`
}

// logOpts are dockerd's log-opts: strings, though numbers and booleans
// are taken too.
type logOpts map[string]string

func (l *logOpts) UnmarshalJSON(b []byte) error {
	var raw map[string]any
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*l = logOpts{}
	for k, v := range raw {
		switch v.(type) {
		case string, float64, bool:
			(*l)[k] = fmt.Sprint(v)
		default:
			return fmt.Errorf("log-opts: %s: not a string", k)
		}
	}
	return nil
}

func daemonCmd() *cobra.Command {
	o := &daemonOpts{}
	var configFile string
	cmd := &cobra.Command{
		Use:           "tentd",
		Short:         "The tent daemon (the Docker Engine API server); also `tent daemon`",
		Version:       version.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if configFile != "" {
				if err := loadDaemonConfig(configFile, o, cmd); err != nil {
					return err
				}
			}
			return runDaemon(o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataRoot, "data-root", client.DefaultDataRoot, "where images, containers and logs are kept")
	f.StringVar(&o.ExecRoot, "exec-root", client.DefaultExecRoot, "where runtime state and sockets live")
	f.StringArrayVarP(&o.Hosts, "host", "H", nil, "address to listen on: unix:///path or tcp://host:port (repeatable; default "+client.DefaultHost+")")
	f.StringVarP(&o.LogLevel, "log-level", "l", "info", "debug, info, warn or error")
	f.StringVar(&o.CgroupParent, "cgroup-parent", "/tent", "parent cgroup of containers")
	f.StringVar(&o.TLSCert, "tlscert", "", "TLS certificate for tcp hosts")
	f.StringVar(&o.TLSKey, "tlskey", "", "TLS key for tcp hosts")
	f.StringVar(&o.TLSCACert, "tlscacert", "", "CA that client certificates must be signed by")
	f.BoolVar(&o.TLSVerify, "tlsverify", false, "require client certificates signed by --tlscacert")
	f.StringArrayVar(&o.Insecure, "insecure-registry", nil, "registry (host[:port] or CIDR) to reach over plain HTTP (repeatable; loopback ones always may)")
	f.BoolVar(&o.Init, "init", false, "run an init inside every container (unless it asks --init=false)")
	f.StringVar(&o.InitPath, "init-path", "", "the init binary for --init (default: docker-init or tini-static in $PATH)")
	f.StringVarP(&o.Bridge, "bridge", "b", "tent0", "the default network's Linux bridge (made if missing)")
	f.StringVar(&o.BIP, "bip", "", "the default bridge's address and prefix, as 172.20.0.1/16 (default: a free pool subnet)")
	f.StringVar(&o.FixedCIDR, "fixed-cidr", "", "the default bridge's addresses for containers: an IPv4 range of its subnet")
	f.BoolVar(&o.IPv6, "ipv6", false, "give the default bridge's containers IPv6 addresses too (from --fixed-cidr-v6)")
	f.StringVar(&o.FixedCIDRv6, "fixed-cidr-v6", "", "the default bridge's IPv6 subnet, as fd00:1::/64 (with --ipv6)")
	o.ICC, o.IPMasq = new(bool), new(bool)
	f.BoolVar(o.ICC, "icc", true, "let the default bridge's containers reach each other")
	f.BoolVar(o.IPMasq, "ip-masq", true, "masquerade what leaves the default bridge")
	f.StringVar(&o.IP, "ip", "", "where the default bridge's ports published without an address go (default: 0.0.0.0 and ::)")
	f.IntVar(&o.MTU, "mtu", 0, "MTU of the networks' interfaces (default: the kernel's, 1500)")
	f.StringArrayVar(&o.poolFlags, "default-address-pool", nil, "where networks without a subnet get one: base=CIDR,size=BITS (repeatable)")
	f.StringVar(&o.LogDriver, "log-driver", logfile.DriverJSONFile, "log driver of containers that name none: json-file, local or none")
	f.StringArrayVar(&o.logFlags, "log-opt", nil, "option of the default log driver: KEY=VALUE (repeatable)")
	f.BoolVar(&o.Experimental, "experimental", false, "say that experimental features are on (the docker CLI then offers checkpoint and start --checkpoint)")
	f.StringArrayVar(&o.runtimeFlags, "add-runtime", nil, "an OCI runtime binary containers may ask for with --runtime: NAME=PATH (repeatable)")
	f.StringVar(&o.DefaultRuntime, "default-runtime", "", "the runtime of containers that name none (default: tent's own)")
	o.VMTemplates = new(bool)
	f.BoolVar(o.VMTemplates, "vm-templates", true, "start VMs (--isolation vm) from a saved booted guest rather than booting each (false: each VM boots, with a kernel address layout of its own)")
	f.StringVar(&configFile, "config-file", "", "JSON file with the same settings as the flags (flags win)")
	return cmd
}

// loadDaemonConfig reads the config file; flags given on the command line
// keep their values.
func loadDaemonConfig(path string, o *daemonOpts, cmd *cobra.Command) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var fileOpts daemonOpts
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fileOpts); err != nil {
		return fmt.Errorf("config file %s: %v", path, err)
	}
	set := func(flag string, dst *string, v string) {
		if v != "" && !cmd.Flags().Changed(flag) {
			*dst = v
		}
	}
	set("data-root", &o.DataRoot, fileOpts.DataRoot)
	set("exec-root", &o.ExecRoot, fileOpts.ExecRoot)
	set("log-level", &o.LogLevel, fileOpts.LogLevel)
	set("cgroup-parent", &o.CgroupParent, fileOpts.CgroupParent)
	set("tlscert", &o.TLSCert, fileOpts.TLSCert)
	set("tlskey", &o.TLSKey, fileOpts.TLSKey)
	set("tlscacert", &o.TLSCACert, fileOpts.TLSCACert)
	set("init-path", &o.InitPath, fileOpts.InitPath)
	set("bridge", &o.Bridge, fileOpts.Bridge)
	set("bip", &o.BIP, fileOpts.BIP)
	set("fixed-cidr", &o.FixedCIDR, fileOpts.FixedCIDR)
	set("fixed-cidr-v6", &o.FixedCIDRv6, fileOpts.FixedCIDRv6)
	if !cmd.Flags().Changed("ipv6") && fileOpts.IPv6 {
		o.IPv6 = true
	}
	if !cmd.Flags().Changed("icc") && fileOpts.ICC != nil {
		*o.ICC = *fileOpts.ICC
	}
	if !cmd.Flags().Changed("ip-masq") && fileOpts.IPMasq != nil {
		*o.IPMasq = *fileOpts.IPMasq
	}
	if !cmd.Flags().Changed("vm-templates") && fileOpts.VMTemplates != nil {
		*o.VMTemplates = *fileOpts.VMTemplates
	}
	set("ip", &o.IP, fileOpts.IP)
	if !cmd.Flags().Changed("mtu") && fileOpts.MTU != 0 {
		o.MTU = fileOpts.MTU
	}
	if !cmd.Flags().Changed("default-address-pool") {
		o.Pools = fileOpts.Pools
	}
	if !cmd.Flags().Changed("init") && fileOpts.Init {
		o.Init = true
	}
	if !cmd.Flags().Changed("host") && len(fileOpts.Hosts) > 0 {
		o.Hosts = fileOpts.Hosts
	}
	if !cmd.Flags().Changed("insecure-registry") && len(fileOpts.Insecure) > 0 {
		o.Insecure = fileOpts.Insecure
	}
	if !cmd.Flags().Changed("tlsverify") && fileOpts.TLSVerify {
		o.TLSVerify = true
	}
	if !cmd.Flags().Changed("experimental") && fileOpts.Experimental {
		o.Experimental = true
	}
	set("log-driver", &o.LogDriver, fileOpts.LogDriver)
	set("default-runtime", &o.DefaultRuntime, fileOpts.DefaultRuntime)
	o.Runtimes = fileOpts.Runtimes
	if !cmd.Flags().Changed("log-opt") {
		o.LogOpts = fileOpts.LogOpts
	}
	return nil
}

func runDaemon(o *daemonOpts) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(o.LogLevel)); err != nil {
		return fmt.Errorf("--log-level %q: %v", o.LogLevel, err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if len(o.Hosts) == 0 {
		o.Hosts = []string{client.DefaultHost}
	}
	for _, kv := range o.logFlags {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return fmt.Errorf("invalid --log-opt %q: want KEY=VALUE", kv)
		}
		if o.LogOpts == nil {
			o.LogOpts = logOpts{}
		}
		o.LogOpts[k] = v
	}
	if _, err := logfile.Configure(o.LogDriver, o.LogOpts); err != nil {
		return fmt.Errorf("default log driver: %w", err)
	}
	cfg := daemon.Config{DataRoot: o.DataRoot, ExecRoot: o.ExecRoot, CgroupParent: o.CgroupParent, Logger: log,
		LogDriver: o.LogDriver, LogOpts: o.LogOpts, InsecureRegistries: o.Insecure, Init: o.Init, InitPath: o.InitPath,
		DefaultRuntime: o.DefaultRuntime, NoVMTemplates: !*o.VMTemplates}
	var err error
	if cfg.Runtimes, err = o.runtimes(); err != nil {
		return err
	}
	if cfg.Network, err = o.networkConfig(log); err != nil {
		return err
	}
	d, err := daemon.New(cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	// IdleTimeout: a client that keeps connections open without using them
	// (one http.Client per request, say) does not pile up descriptors in
	// the daemon; streams (attach, logs -f, events) are requests, not idle.
	api := server.New(d, version.Version, log)
	api.Experimental = o.Experimental
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 5 * time.Minute}
	var listeners []net.Listener
	for _, h := range o.Hosts {
		l, err := listen(h, o)
		if err != nil {
			for _, l := range listeners {
				l.Close()
			}
			return err
		}
		listeners = append(listeners, l)
	}
	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() { errc <- srv.Serve(l) }()
	}
	log.Info("tent daemon ready", "version", version.Version, "hosts", strings.Join(o.Hosts, ","), "data-root", o.DataRoot)
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT)
	select {
	case sig := <-sigc:
		log.Info("shutting down; containers keep running", "signal", sig.String())
	case err := <-errc:
		log.Error("serve", "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	return nil
}

// listen opens one --host address.
func listen(addr string, o *daemonOpts) (net.Listener, error) {
	proto, rest, ok := strings.Cut(addr, "://")
	if !ok {
		return nil, fmt.Errorf("invalid host %q: want unix:///path or tcp://host:port", addr)
	}
	switch proto {
	case "unix":
		if err := os.MkdirAll(filepath.Dir(rest), 0o711); err != nil {
			return nil, err
		}
		if c, err := net.Dial("unix", rest); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s is in use: is another tent daemon running?", rest)
		}
		os.Remove(rest)
		l, err := net.Listen("unix", rest)
		if err != nil {
			return nil, err
		}
		return l, os.Chmod(rest, 0o660)
	case "tcp":
		l, err := net.Listen("tcp", rest)
		if err != nil {
			return nil, err
		}
		if o.TLSCert == "" {
			return l, nil
		}
		conf, err := tlsConfig(o)
		if err != nil {
			l.Close()
			return nil, err
		}
		return tls.NewListener(l, conf), nil
	}
	return nil, fmt.Errorf("invalid host %q: unsupported protocol %q", addr, proto)
}

func tlsConfig(o *daemonOpts) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, err
	}
	conf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if o.TLSVerify {
		if o.TLSCACert == "" {
			return nil, errors.New("--tlsverify needs --tlscacert")
		}
		pem, err := os.ReadFile(o.TLSCACert)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no certificate", o.TLSCACert)
		}
		conf.ClientCAs, conf.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return conf, nil
}

type addressPool struct {
	Base string `json:"base"`
	Size int    `json:"size"`
}

// networkConfig is the networks' part of the daemon's configuration.
func (o *daemonOpts) networkConfig(log *slog.Logger) (network.Config, error) {
	c := network.Config{Bridge: o.Bridge, MTU: o.MTU, Table: network.TableFor(o.Bridge)}
	if o.BIP != "" {
		p, err := netip.ParsePrefix(o.BIP)
		if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
			return c, fmt.Errorf("--bip %q: want an IPv4 address and prefix, as 172.20.0.1/16", o.BIP)
		}
		c.BIP = p
	}
	if o.FixedCIDR != "" {
		p, err := netip.ParsePrefix(o.FixedCIDR)
		if err != nil || !p.Addr().Is4() || p.Bits() > 30 {
			return c, fmt.Errorf("--fixed-cidr %q: want an IPv4 range, as 172.20.1.0/24", o.FixedCIDR)
		}
		c.FixedCIDR = p.Masked()
	}
	c.NoICC, c.NoMasquerade = !*o.ICC, !*o.IPMasq
	if o.IP != "" {
		ip, err := netip.ParseAddr(o.IP)
		if err != nil {
			return c, fmt.Errorf("--ip %q: want an address, as 127.0.0.1", o.IP)
		}
		if !ip.IsUnspecified() {
			c.HostBinding = ip.Unmap()
		}
	}
	switch {
	case o.IPv6 && o.FixedCIDRv6 == "": // dockerd 20.10's words
		return c, errors.New("IPv6 is enabled for the default bridge, but no subnet is configured. Specify an IPv6 subnet using --fixed-cidr-v6")
	case o.FixedCIDRv6 != "":
		p, err := netip.ParsePrefix(o.FixedCIDRv6)
		if err != nil || !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() > 124 {
			return c, fmt.Errorf("--fixed-cidr-v6 %q: want an IPv6 subnet, as fd00:1::/64", o.FixedCIDRv6)
		}
		if o.IPv6 {
			c.FixedCIDRv6 = p.Masked()
		} else {
			log.Warn("--fixed-cidr-v6 is ignored without --ipv6", "fixed-cidr-v6", o.FixedCIDRv6)
		}
	}
	for _, f := range o.poolFlags {
		var p addressPool
		for _, kv := range strings.Split(f, ",") {
			k, v, _ := strings.Cut(kv, "=")
			switch k {
			case "base":
				p.Base = v
			case "size":
				n, err := strconv.Atoi(v)
				if err != nil {
					return c, fmt.Errorf("--default-address-pool %q: bad size", f)
				}
				p.Size = n
			default:
				return c, fmt.Errorf("--default-address-pool %q: unknown key %q (base, size)", f, k)
			}
		}
		o.Pools = append(o.Pools, p)
	}
	for _, p := range o.Pools {
		base, err := netip.ParsePrefix(p.Base)
		if err != nil || !base.Addr().Is4() || p.Size < base.Bits() || p.Size > 30 {
			return c, fmt.Errorf("default address pool %s size %d: want an IPv4 CIDR and a size from its prefix to 30", p.Base, p.Size)
		}
		c.Pools = append(c.Pools, network.Pool{Base: base.Masked(), Size: p.Size})
	}
	return c, nil
}

// runtimes are the configured runtime binaries: the file's and the
// flags' (a name in both is an error, as with dockerd).
func (o *daemonOpts) runtimes() (map[string]ocibin.Binary, error) {
	out := map[string]ocibin.Binary{}
	for name, r := range o.Runtimes {
		if r.Path == "" {
			return nil, fmt.Errorf("runtime %s: no path in the config file", name)
		}
		out[name] = ocibin.Binary{Path: r.Path, Args: r.RuntimeArgs}
	}
	for _, kv := range o.runtimeFlags {
		name, path, ok := strings.Cut(kv, "=")
		if !ok || name == "" || path == "" {
			return nil, fmt.Errorf("invalid --add-runtime %q: want NAME=PATH", kv)
		}
		if _, dup := out[name]; dup {
			return nil, fmt.Errorf("runtime %s is given both by --add-runtime and in the config file", name)
		}
		out[name] = ocibin.Binary{Path: path}
	}
	return out, nil
}
