package netsvc

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/network"
)

func TestPortMappings(t *testing.T) {
	p80, p53 := netapi.MustParsePort("80/tcp"), netapi.MustParsePort("53/udp")
	cfg := &container.Config{ExposedPorts: netapi.PortSet{p80: {}, p53: {}}}
	hc := &container.HostConfig{PublishAllPorts: true, PortBindings: netapi.PortMap{p80: {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8080-8081"}, {HostIP: netip.IPv6Unspecified(), HostPort: "8080"}}}}
	ms, err := PortMappings(cfg, hc)
	if err != nil || len(ms) != 3 {
		t.Fatalf("mappings: %+v %v", ms, err)
	}
	if m := ms[0]; m.Proto != "udp" || m.ContainerPort != 53 || m.HostPort != 0 {
		t.Errorf("-P of 53/udp: %+v", m)
	}
	if m := ms[1]; m.Proto != "tcp" || m.HostPort != 8080 || m.HostPortEnd != 8081 || m.HostIP.String() != "127.0.0.1" {
		t.Errorf("80/tcp: %+v", m)
	}
	if m := ms[2]; m.HostPort != 8080 || m.HostIP != netip.IPv6Unspecified() {
		t.Errorf("80/tcp on [::]: %+v", m)
	}
	for _, b := range []netapi.PortBinding{{HostPort: "9-8"}, {HostPort: "x"}} {
		_, err := PortMappings(&container.Config{}, &container.HostConfig{PortBindings: netapi.PortMap{p80: {b}}})
		if err == nil {
			t.Errorf("binding %+v taken", b)
		}
	}
}

func TestEndpointConfig(t *testing.T) {
	user := &network.Network{ID: "n1", Name: "app", Driver: network.DriverBridge, UserSubnet: true, Subnet: netip.MustParsePrefix("10.1.0.0/24")}
	es, err := EndpointConfig(user, &netapi.EndpointSettings{Aliases: []string{"db"}, IPAMConfig: &netapi.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.1.0.9")}})
	if err != nil || es.NetworkID != "n1" || es.IPAMConfig.IPv4Address.String() != "10.1.0.9" || es.Aliases[0] != "db" {
		t.Errorf("user network: %+v %v", es, err)
	}
	if _, err := EndpointConfig(user, &netapi.EndpointSettings{IPAMConfig: &netapi.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("10.2.0.9")}}); !errdefs.IsInvalidArgument(err) {
		t.Errorf("an address outside the subnet: %v", err)
	}
	bridge := &network.Network{ID: "b", Name: network.NameBridge, Driver: network.DriverBridge}
	if _, err := EndpointConfig(bridge, &netapi.EndpointSettings{Aliases: []string{"x"}}); err == nil || !strings.Contains(err.Error(), "user defined networks") {
		t.Errorf("an alias on the default bridge: %v", err)
	}
	if ModeNetwork("default") != network.NameBridge || ModeNetwork("host") != "" || ModeNetwork("container:x") != "" || ModeNetwork("app") != "app" {
		t.Error("network modes")
	}
	if m := With(map[string]int{"a": 1}, "b", 2); len(m) != 2 {
		t.Errorf("With: %v", m)
	}
}

func TestCheckCreateAndSettings(t *testing.T) {
	s, _, _ := newService(t)
	exists := func(ref string) error { return nil }
	p80 := netapi.MustParsePort("80/tcp")
	hc := &container.HostConfig{NetworkMode: "host", PortBindings: netapi.PortMap{p80: {{}}}}
	if _, w, err := s.CheckCreate(&container.Config{}, hc, nil, exists); err != nil || len(w) != 1 || hc.PortBindings != nil {
		t.Errorf("host mode with ports: %q %v %v", w, err, hc.PortBindings)
	}
	hc = &container.HostConfig{NetworkMode: "container:other", ExtraHosts: []string{"a:1.2.3.4"}}
	if _, _, err := s.CheckCreate(&container.Config{}, hc, nil, exists); err == nil || !strings.Contains(err.Error(), "custom host-to-IP mapping") {
		t.Errorf("container mode with --add-host: %v", err)
	}
	nets, _, err := s.CheckCreate(&container.Config{}, &container.HostConfig{ExtraHosts: []string{"gw:host-gateway"}},
		&netapi.NetworkingConfig{EndpointsConfig: map[string]*netapi.EndpointSettings{"later": {Aliases: []string{"x"}}}}, exists)
	if err != nil || nets[network.NameBridge] == nil || nets["later"] == nil {
		t.Errorf("the default bridge and a network made later: %v %v", nets, err)
	}
	hosts, err := s.ExtraHosts(&container.HostConfig{ExtraHosts: []string{"gw:host-gateway", "db=10.0.0.2"}})
	if err != nil || hosts[0][0] != "gw" || !strings.HasPrefix(hosts[0][1], "10.214.") || hosts[1] != [2]string{"db", "10.0.0.2"} {
		t.Errorf("extra hosts: %v %v", hosts, err)
	}
	st := s.Settings(Container{ID: strings.Repeat("a", 64), Mode: "bridge", Exposed: netapi.PortSet{p80: {}}, Networks: nets})
	if _, ok := st.Ports[p80]; !ok || st.SandboxKey != "" || st.Networks[network.NameBridge] == nil {
		t.Errorf("settings of a created container: %+v", st)
	}
}
