package netsvc

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/events"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/eventbus"
	"github.com/tent-project/tent/internal/network"
	"github.com/tent-project/tent/internal/testutil"
	"github.com/vishvananda/netlink"
)

// newService is the service over a network manager with a bridge, table
// and pool of its own, all gone at the end.
func newService(t *testing.T, used map[string]bool) (*Networks, *eventbus.Bus) {
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
		if l, err := netlink.LinkByName(cfg.Bridge); err == nil {
			netlink.LinkDel(l)
		}
		network.DeleteTable(cfg.Table)
	})
	bus := eventbus.New()
	return New(m, bus, func(n *network.Network) bool { return used[n.Name] }), bus
}

func TestNetworks(t *testing.T) {
	used := map[string]bool{}
	s, bus := newService(t, used)
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
	if err != nil || ins.ID != resp.ID || ins.Scope != "local" || ins.IPAM.Config[0].Subnet.String() != "10.214.77.0/24" || ins.Labels["tier"] != "web" {
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
	used["back"] = true
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
	used["back"] = false
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
