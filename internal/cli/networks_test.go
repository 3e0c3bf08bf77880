package cli

import (
	"slices"
	"strings"
	"testing"
)

// TestIPAMConfigs: --subnet, --ip-range, --gateway and --aux-address
// pair as docker's CLI pairs them, by the subnet that holds each.
func TestIPAMConfigs(t *testing.T) {
	got, err := ipamConfigs([]string{"10.1.0.0/24", "fd00:1::/64"}, []string{"fd00:1::100/120"}, []string{"fd00:1::fe", "10.1.0.254"},
		[]string{"r1=10.1.0.2", "r6=fd00:1::2", "r1=10.1.0.3"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Gateway.String() != "10.1.0.254" || got[0].IPRange.IsValid() ||
		got[1].Gateway.String() != "fd00:1::fe" || got[1].IPRange.String() != "fd00:1::100/120" ||
		len(got[0].AuxAddress) != 1 || got[0].AuxAddress["r1"].String() != "10.1.0.3" || got[1].AuxAddress["r6"].String() != "fd00:1::2" {
		t.Errorf("configs: %+v", got)
	}
	for _, c := range []struct {
		subnets, ranges, gateways, aux []string
		want                           string
	}{
		{nil, nil, []string{"10.1.0.1"}, nil, "every ip-range or gateway must have a corresponding subnet"},
		{[]string{"10.1.0.0/24"}, nil, []string{"10.2.0.1"}, nil, "no matching subnet for gateway 10.2.0.1"},
		{[]string{"10.1.0.0/24"}, []string{"10.1.0.0/26", "10.1.0.64/26"}, nil, nil, "cannot configure multiple ranges"},
		{[]string{"10.1.0.0/24"}, nil, []string{"10.1.0.1", "10.1.0.2"}, nil, "cannot configure multiple gateways"},
		{[]string{"nonsense"}, nil, nil, nil, `invalid argument "nonsense" for "--subnet" flag`},
		{nil, nil, nil, []string{"r=10.1.0.2"}, "no matching subnet for aux-address 10.1.0.2"},
		{[]string{"10.1.0.0/24"}, nil, nil, []string{"r=10.2.0.2"}, "no matching subnet for aux-address 10.2.0.2"},
		{[]string{"10.1.0.0/24"}, nil, nil, []string{"10.1.0.2"}, `invalid argument "10.1.0.2" for "--aux-address" flag`},
	} {
		if _, err := ipamConfigs(c.subnets, c.ranges, c.gateways, c.aux); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %q", c, err, c.want)
		}
	}
	if got, err := ipamConfigs(nil, nil, nil, nil); err != nil || got != nil {
		t.Errorf("no flags: %+v %v", got, err)
	}
}

func TestNaturalCompare(t *testing.T) {
	lines := []string{"443/tcp -> 0.0.0.0:1", "80/tcp -> [::]:18181", "80/tcp -> [::1]:18182", "80/tcp -> 0.0.0.0:18181", "8080/tcp -> 0.0.0.0:9", "80/tcp -> 0.0.0.0:9000"}
	slices.SortFunc(lines, naturalCompare)
	want := []string{"80/tcp -> 0.0.0.0:9000", "80/tcp -> 0.0.0.0:18181", "80/tcp -> [::1]:18182", "80/tcp -> [::]:18181", "443/tcp -> 0.0.0.0:1", "8080/tcp -> 0.0.0.0:9"}
	if !slices.Equal(lines, want) {
		t.Errorf("natural order:\n%q\nwant\n%q", lines, want)
	}
}
