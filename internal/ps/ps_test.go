package ps

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
)

func TestFilters(t *testing.T) {
	for f, msg := range map[string]map[string][]string{
		"invalid filter 'bogus'":        {"bogus": {"x"}},
		"invalid filter 'status=gone'":  {"status": {"gone"}},
		"Unrecognised filter value for": {"health": {"sick"}},
	} {
		if err := CheckFilters(msg); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("%v: %v", msg, err)
		}
	}
	s := container.Summary{ID: "abc123", Names: []string{"/web-1"}, ImageID: "sha256:img", State: container.StateExited,
		Mounts: []container.MountPoint{{Name: "data", Destination: "/data"}}}
	st := State{Status: container.StateExited, ExitCode: 3}
	images := func(ref string) string {
		if ref == "web:1" {
			return "sha256:img"
		}
		return ""
	}
	for _, tc := range []struct {
		f    map[string][]string
		want bool
	}{
		{map[string][]string{"id": {"abc"}}, true},
		{map[string][]string{"name": {"/web"}}, true},
		{map[string][]string{"name": {"db"}}, false},
		{map[string][]string{"exited": {"3"}, "status": {"exited"}}, true},
		{map[string][]string{"exited": {"0"}}, false},
		{map[string][]string{"health": {"none"}}, true},
		{map[string][]string{"ancestor": {"web:1"}}, true},
		{map[string][]string{"ancestor": {"other"}}, false},
		{map[string][]string{"volume": {"/data"}}, true},
		{map[string][]string{"label": {"tier=web"}}, true},
		{map[string][]string{"label": {"tier=db"}}, false},
	} {
		if got := Matches(s, st, map[string]string{"tier": "web"}, tc.f, images); got != tc.want {
			t.Errorf("%v: %v", tc.f, got)
		}
	}
}

func TestLine(t *testing.T) {
	if got := Command("sh", []string{"-c", "exit 3"}); got != "sh -c 'exit 3'" {
		t.Errorf("command: %q", got)
	}
	now := time.Now()
	for _, tc := range []struct {
		st   State
		want string
	}{
		{State{Status: container.StateRunning, StartedAt: now.Add(-5 * time.Second), Health: &container.Health{Status: container.Healthy}}, "Up 5 seconds (healthy)"},
		{State{Status: container.StatePaused, StartedAt: now.Add(-time.Minute)}, "Up About a minute (Paused)"},
		{State{Status: container.StateExited, ExitCode: 1, FinishedAt: now.Add(-2 * time.Hour)}, "Exited (1) 2 hours ago"},
		{State{Status: container.StateCreated}, "Created"},
	} {
		if got := Status(tc.st); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.st.Status, got, tc.want)
		}
	}
	p80 := netapi.MustParsePort("80/tcp")
	p53 := netapi.MustParsePort("53/udp")
	ports := Ports(netapi.PortMap{p80: {{HostIP: netip.MustParseAddr("0.0.0.0"), HostPort: "8080"}}, p53: nil})
	if len(ports) != 2 {
		t.Fatalf("ports: %+v", ports)
	}
	for _, p := range ports {
		if p.PrivatePort == 80 && (p.PublicPort != 8080 || p.Type != "tcp") || p.PrivatePort == 53 && (p.PublicPort != 0 || p.Type != "udp") {
			t.Errorf("port: %+v", p)
		}
	}
}

func TestParseTop(t *testing.T) {
	out := "UID PID PPID C STIME TTY TIME CMD\nroot 1 0 0 10:00 ? 00:00:01 /sbin/init splash\nroot 42 1 0 10:01 ? 00:00:00 sleep 1000\n"
	top, err := parseTop(out, []int{42}, "-ef")
	if err != nil {
		t.Fatal(err)
	}
	if len(top.Processes) != 1 || top.Processes[0][1] != "42" || top.Processes[0][7] != "sleep 1000" || len(top.Titles) != 8 {
		t.Errorf("top: %+v", top)
	}
	if _, err := parseTop("USER COMMAND\nroot sh\n", []int{1}, "-o user,comm"); err == nil {
		t.Error("ps output without a PID column taken")
	}
}
