package netsvc

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/containers"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/eventbus"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/testutil"
	"github.com/vishvananda/netlink"
)

// newService is the service over a network manager with a bridge, table
// and pool of its own, all gone at the end, and an empty container store.
func newService(t *testing.T) (*Networks, *eventbus.Bus, *containers.Store) {
	t.Helper()
	testutil.RequiresRoot(t)
	cfg := network.Config{Root: t.TempDir(), Bridge: "tnt-svc0", Table: "tent_svc_test",
		Pools: []network.Pool{{Base: netip.MustParsePrefix("10.214.0.0/16"), Size: 24}}}
	m, err := network.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		for _, n := range m.List() { // the default bridge and the tests' networks'
			if l, err := netlink.LinkByName(n.Bridge); err == nil && n.Bridge != "" {
				netlink.LinkDel(l)
			}
		}
		network.DeleteTable(cfg.Table)
	})
	bus, ctrs := eventbus.New(), containers.NewStore(testutil.BoltDB(t))
	return New(m, bus, ctrs), bus, ctrs
}

// stoppedOn is a container that never ran, recorded on network name.
func stoppedOn(name string) *containers.Container {
	return containers.New(containers.Record{ID: strings.Repeat("c", 64), Name: "user", Config: &container.Config{},
		HostConfig: &container.HostConfig{NetworkMode: "bridge"},
		Networks:   map[string]*netapi.EndpointSettings{name: {}}})
}

func TestNetworks(t *testing.T) {
	s, bus, ctrs := newService(t)
	_, ch, cancel := bus.Subscribe(time.Time{})
	defer cancel()
	resp, err := s.NetworkCreate(netapi.CreateRequest{Name: "front", Driver: "bridge", Labels: map[string]string{"tier": "web"},
		IPAM: &netapi.IPAM{Config: []netapi.IPAMConfig{{Subnet: netip.MustParsePrefix("10.214.77.0/24")}}}})
	if err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Type != events.NetworkEventType || ev.Action != events.ActionCreate || ev.Actor.Attributes["name"] != "front" {
		t.Errorf("create event: %+v", ev)
	}
	if _, err := s.NetworkCreate(netapi.CreateRequest{Name: "back", Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	ins, err := s.NetworkInspect("front")
	if err != nil || ins.ID != resp.ID || ins.Scope != "local" || ins.IPAM.Config[0].Subnet.String() != "10.214.77.0/24" || ins.IPAM.Config[0].Gateway.IsValid() || ins.Labels["tier"] != "web" {
		t.Errorf("inspect: %+v %v", ins, err)
	}
	names := func(f map[string][]string) string {
		l, err := s.NetworkList(f)
		if err != nil {
			return err.Error()
		}
		var out []string
		for _, n := range l {
			out = append(out, n.Name)
		}
		return strings.Join(out, ",")
	}
	user := stoppedOn("back") // a stopped container keeps its network
	ctrs.Add(user)
	for _, tc := range []struct {
		f    map[string][]string
		want string
	}{
		{map[string][]string{"label": {"tier=web"}}, "front"},
		{map[string][]string{"name": {"ack"}}, "back"},
		{map[string][]string{"dangling": {"true"}}, "front"},
		{map[string][]string{"type": {"custom"}, "id": {resp.ID[:6]}}, "front"},
	} {
		if got := names(tc.f); got != tc.want {
			t.Errorf("list %v: %q, want %q", tc.f, got, tc.want)
		}
	}
	if got := names(map[string][]string{"type": {"odd"}}); !strings.Contains(got, "invalid filter: 'type'='odd'") {
		t.Errorf("a bad type filter: %q", got)
	}
	for _, req := range []netapi.CreateRequest{
		{Name: "x", Scope: "swarm"},
		{Name: "y", IPAM: &netapi.IPAM{Driver: "other"}},
	} {
		if _, err := s.NetworkCreate(req); err == nil || errdefs.IsConflict(err) {
			t.Errorf("create %+v: %v", req, err)
		}
	}
	pruned, err := s.NetworkPrune(backend.PruneFilter{})
	if err != nil || strings.Join(pruned, ",") != "front" {
		t.Errorf("prune (back is used): %q %v", pruned, err)
	}
	ctrs.Forget(user)
	if err := s.NetworkRemove("back"); err != nil {
		t.Errorf("remove: %v", err)
	}
	if _, err := s.NetworkInspect("back"); !errdefs.IsNotFound(err) {
		t.Errorf("inspect of a removed network: %v", err)
	}
	if _, err := ParseMAC("02:42:ac:11:00:02"); err != nil {
		t.Error(err)
	}
	if _, err := ParseMAC("02:42"); !errdefs.IsInvalidArgument(err) {
		t.Errorf("a short MAC: %v", err)
	}
}

// TestConnectStopped connects and disconnects a stopped container: only
// its record changes (its endpoints come at its start), and docker's
// refusals hold.
func TestConnectStopped(t *testing.T) {
	s, bus, ctrs := newService(t)
	if _, err := s.NetworkCreate(netapi.CreateRequest{Name: "mid", Driver: "bridge"}); err != nil {
		t.Fatal(err)
	}
	c := stoppedOn("bridge")
	ctrs.Add(c)
	_, ch, cancel := bus.Subscribe(time.Time{})
	defer cancel()
	if err := s.NetworkConnect("mid", "user", &netapi.EndpointSettings{Aliases: []string{"db"}}); err != nil {
		t.Fatal(err)
	}
	if ev := <-ch; ev.Action != events.ActionConnect || ev.Actor.Attributes["container"] != c.ID {
		t.Errorf("connect event: %+v", ev)
	}
	if es := c.Networks["mid"]; es == nil || len(es.Aliases) != 1 || es.NetworkID == "" {
		t.Errorf("recorded: %+v", c.Networks)
	}
	if err := s.NetworkConnect("mid", "user", nil); !errors.Is(err, errdefs.ErrForbidden) {
		t.Errorf("a second connect: %v", err)
	}
	if err := s.NetworkConnect("mid", "nobody", nil); !errdefs.IsNotFound(err) {
		t.Errorf("connect of a missing container: %v", err)
	}
	if err := s.NetworkDisconnect("mid", "user", false); err != nil {
		t.Fatal(err)
	}
	if _, on := c.Networks["mid"]; on || c.Networks["bridge"] == nil {
		t.Errorf("after disconnect: %+v", c.Networks)
	}
	// dockerd 20.10 answers a 500 (no class here) with the full ID.
	if err := s.NetworkDisconnect("mid", "user", false); err == nil || errdefs.ClassOf(err) != "" || !strings.Contains(err.Error(), c.ID+" is not connected to network mid") {
		t.Errorf("a second disconnect: %v", err)
	}
	if err := s.NetworkDisconnect("mid", "nobody", true); err != nil {
		t.Errorf("forced disconnect of a missing container: %v", err)
	}
	recs, err := ctrs.Load(func(string, error) {})
	if err != nil || len(recs) != 1 || len(recs[0].Networks) != 1 {
		t.Errorf("saved record: %+v %v", recs, err)
	}
}
