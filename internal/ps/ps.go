// Package ps makes `docker ps`: each container's line (command, status,
// ports) as dockerd shows it, and dockerd's filters.
package ps

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	netapi "github.com/moby/moby/api/types/network"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/health"
)

// State is what ps shows of a container's state.
type State struct {
	Status                container.ContainerState
	ExitCode              int
	Health                *container.Health
	StartedAt, FinishedAt time.Time
}

// CheckFilters refuses filters that ps does not have, and bad values,
// in dockerd's words.
func CheckFilters(f map[string][]string) error {
	for k := range f {
		switch k {
		case "id", "name", "status", "label", "exited", "ancestor", "before", "since", "volume":
		case "health":
			for _, v := range f[k] {
				if container.ValidateHealthStatus(container.HealthStatus(v)) != nil {
					return fmt.Errorf("Unrecognised filter value for health: %s: %w", v, errdefs.ErrInvalidArgument)
				}
			}
		default:
			return fmt.Errorf("invalid filter '%s': %w", k, errdefs.ErrInvalidArgument)
		}
	}
	if vals, ok := f["status"]; ok {
		for _, v := range vals {
			if container.ValidateContainerState(container.ContainerState(v)) != nil {
				return fmt.Errorf("invalid filter 'status=%s': %w", v, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

// Matches says whether a container (its ps line s, its state and
// labels) passes the filters f; imageID resolves an ancestor filter's
// image ("" for none).
func Matches(s container.Summary, st State, labels map[string]string, f map[string][]string, imageID func(ref string) string) bool {
	any := func(key string, ok func(string) bool) bool {
		vals, set := f[key]
		return !set || slices.ContainsFunc(vals, ok)
	}
	return any("id", func(v string) bool { return strings.HasPrefix(s.ID, v) }) &&
		any("name", func(v string) bool {
			return strings.Contains(strings.TrimPrefix(s.Names[0], "/"), strings.TrimPrefix(v, "/"))
		}) &&
		any("status", func(v string) bool { return string(s.State) == v }) &&
		any("health", func(v string) bool {
			if st.Health == nil {
				return v == string(container.NoHealthcheck)
			}
			return string(st.Health.Status) == v
		}) &&
		any("exited", func(v string) bool {
			n, err := strconv.Atoi(v)
			return err == nil && s.State == container.StateExited && st.ExitCode == n
		}) &&
		any("ancestor", func(v string) bool {
			id := imageID(v)
			return id != "" && id == s.ImageID
		}) &&
		any("volume", func(v string) bool { // a volume's name or a mount's destination
			return slices.ContainsFunc(s.Mounts, func(m container.MountPoint) bool { return m.Name == v || m.Destination == v })
		}) &&
		backend.AllLabels(labels, f["label"])
}

// Command is the command as `ps` shows it: dockerd quotes an argument
// with a space in it ('exit 3'), nothing else.
func Command(path string, args []string) string {
	out := []string{path}
	for _, a := range args {
		if strings.Contains(a, " ") {
			a = "'" + a + "'"
		}
		out = append(out, a)
	}
	return strings.Join(out, " ")
}

// Status is the STATUS column: "Up 5 seconds (healthy)", "Exited (0) 2
// minutes ago", ...
func Status(st State) string {
	switch st.Status {
	case container.StateRunning:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + health.Suffix(st.Health)
	case container.StatePaused:
		return "Up " + units.HumanDuration(time.Since(st.StartedAt)) + " (Paused)"
	case container.StateExited:
		return fmt.Sprintf("Exited (%d) %s ago", st.ExitCode, units.HumanDuration(time.Since(st.FinishedAt)))
	case container.StateCreated:
		return "Created"
	case container.StateRemoving:
		return "Removal In Progress"
	case container.StateDead:
		return "Dead"
	}
	return string(st.Status)
}

// Ports are the PORTS of a container's network settings: each binding,
// and an exposed port without one.
func Ports(pm netapi.PortMap) []container.PortSummary {
	out := []container.PortSummary{}
	for p, bindings := range pm {
		if len(bindings) == 0 {
			out = append(out, container.PortSummary{PrivatePort: p.Num(), Type: string(p.Proto())})
		}
		for _, b := range bindings {
			n, _ := strconv.ParseUint(b.HostPort, 10, 16)
			out = append(out, container.PortSummary{IP: b.HostIP, PrivatePort: p.Num(), PublicPort: uint16(n), Type: string(p.Proto())})
		}
	}
	return out
}
