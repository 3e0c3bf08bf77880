package ps

import (
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/tent-project/tent/internal/errdefs"
)

// Top lists the processes pids as the host's `ps` (with psArgs, default
// -ef) shows them, as GET /containers/{id}/top answers.
func Top(pids []int, psArgs string) (*container.TopResponse, error) {
	if psArgs == "" {
		psArgs = "-ef"
	}
	out, err := exec.Command("ps", strings.Fields(psArgs)...).Output()
	if err != nil {
		return nil, fmt.Errorf("ps %s: %v: %w", psArgs, err, errdefs.ErrInvalidArgument)
	}
	return parseTop(string(out), pids, psArgs)
}

// parseTop keeps the lines of ps's output out that are of pids.
func parseTop(out string, pids []int, psArgs string) (*container.TopResponse, error) {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	titles := strings.Fields(lines[0])
	col := slices.Index(titles, "PID")
	if col < 0 {
		return nil, fmt.Errorf("ps %s: no PID column: %w", psArgs, errdefs.ErrInvalidArgument)
	}
	top := &container.TopResponse{Titles: titles, Processes: [][]string{}}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < len(titles) {
			continue
		}
		pid, err := strconv.Atoi(f[col])
		if err != nil || !slices.Contains(pids, pid) {
			continue
		}
		// The last column (the command) may contain spaces.
		row := append(f[:len(titles)-1:len(titles)-1], strings.Join(f[len(titles)-1:], " "))
		top.Processes = append(top.Processes, row)
	}
	return top, nil
}
