package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
)

const defaultStatsFormat = "table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}"

var statsHeader = map[string]string{"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME", "CPUPerc": "CPU %",
	"MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %", "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}

// statsRow is one container's line, with the docker CLI's fields and
// arithmetic (CPU over the sample's interval, memory without the
// inactive file cache).
type statsRow struct {
	Container, ID, Name                        string
	CPUPerc, MemUsage, MemPerc, NetIO, BlockIO string
	PIDs                                       string
}

func newStatsRow(ref string, s *container.StatsResponse, trunc bool) statsRow {
	id := s.ID
	if trunc && len(id) > 12 {
		id = id[:12]
	}
	r := statsRow{Container: ref, ID: id, Name: strings.TrimPrefix(s.Name, "/")}
	if r.Name == "" {
		r.Name = "--"
	}
	cpu := 0.0
	cpuDelta := float64(s.CPUStats.CPUUsage.TotalUsage) - float64(s.PreCPUStats.CPUUsage.TotalUsage)
	sysDelta := float64(s.CPUStats.SystemUsage) - float64(s.PreCPUStats.SystemUsage)
	online := float64(s.CPUStats.OnlineCPUs)
	if online == 0 {
		online = float64(len(s.CPUStats.CPUUsage.PercpuUsage))
	}
	if sysDelta > 0 && cpuDelta > 0 {
		cpu = cpuDelta / sysDelta * online * 100
	}
	mem := float64(s.MemoryStats.Usage)
	if v, ok := s.MemoryStats.Stats["total_inactive_file"]; ok && v < s.MemoryStats.Usage {
		mem -= float64(v)
	} else if v := s.MemoryStats.Stats["inactive_file"]; v < s.MemoryStats.Usage {
		mem -= float64(v)
	}
	memPerc := 0.0
	if s.MemoryStats.Limit != 0 {
		memPerc = mem / float64(s.MemoryStats.Limit) * 100
	}
	var rx, tx float64
	for _, n := range s.Networks {
		rx, tx = rx+float64(n.RxBytes), tx+float64(n.TxBytes)
	}
	var rd, wr float64
	for _, e := range s.BlkioStats.IoServiceBytesRecursive {
		switch {
		case strings.HasPrefix(strings.ToLower(e.Op), "r"):
			rd += float64(e.Value)
		case strings.HasPrefix(strings.ToLower(e.Op), "w"):
			wr += float64(e.Value)
		}
	}
	pct := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) + "%" }
	r.CPUPerc, r.MemPerc = pct(cpu), pct(memPerc)
	r.MemUsage = units.BytesSize(mem) + " / " + units.BytesSize(float64(s.MemoryStats.Limit))
	r.NetIO = units.HumanSizeWithPrecision(rx, 3) + " / " + units.HumanSizeWithPrecision(tx, 3)
	r.BlockIO = units.HumanSizeWithPrecision(rd, 3) + " / " + units.HumanSizeWithPrecision(wr, 3)
	r.PIDs = strconv.FormatUint(s.PidsStats.Current, 10)
	return r
}

func statsCmd(a *app) *cobra.Command {
	var all, noStream, noTrunc bool
	var format string
	cmd := &cobra.Command{Use: "stats [OPTIONS] [CONTAINER...]", Short: "Display a live stream of container(s) resource usage statistics"}
	cmd.RunE = a.runE(func(args []string) error {
		if format == "" {
			format = defaultStatsFormat
		}
		refs := args
		if len(refs) == 0 {
			q := url.Values{}
			if all {
				q.Set("all", "1")
			}
			var list []struct{ ID string }
			if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/json", q, nil, &list); err != nil {
				return apiError(err, 1)
			}
			for _, c := range list {
				refs = append(refs, c.ID)
			}
		}
		st := &statsTable{rows: map[string]statsRow{}, refs: refs}
		if noStream {
			st.collect(a, !noTrunc)
			return st.print(os.Stdout, format, false)
		}
		for _, ref := range refs {
			go st.follow(a, ref, !noTrunc)
		}
		for {
			time.Sleep(500 * time.Millisecond)
			if err := st.print(os.Stdout, format, true); err != nil {
				return err
			}
			if st.done() {
				return st.err
			}
		}
	})
	fl := cmd.Flags()
	fl.BoolVarP(&all, "all", "a", false, "Show all containers (default shows just running)")
	fl.BoolVar(&noStream, "no-stream", false, "Disable streaming stats and only pull the first result")
	fl.BoolVar(&noTrunc, "no-trunc", false, "Do not truncate output")
	fl.StringVar(&format, "format", "", "Format output using a custom template")
	return cmd
}

// statsTable is the rows of the containers shown, by reference, in the
// order given.
type statsTable struct {
	mu    sync.Mutex
	refs  []string
	rows  map[string]statsRow
	ended int
	err   error
}

// collect takes one sample of every container, all at once.
func (st *statsTable) collect(a *app, trunc bool) {
	var wg sync.WaitGroup
	for _, ref := range st.refs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := a.c.Do(a.ctx, http.MethodGet, "/containers/"+ref+"/stats", url.Values{"stream": {"0"}}, nil, "")
			if err != nil {
				st.fail(ref, err)
				return
			}
			defer resp.Body.Close()
			var s container.StatsResponse
			if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
				st.fail(ref, err)
				return
			}
			st.set(ref, newStatsRow(ref, &s, trunc))
		}()
	}
	wg.Wait()
}

// follow reads ref's stream until it ends.
func (st *statsTable) follow(a *app, ref string, trunc bool) {
	defer func() { st.mu.Lock(); st.ended++; st.mu.Unlock() }()
	resp, err := a.c.Do(a.ctx, http.MethodGet, "/containers/"+ref+"/stats", url.Values{"stream": {"1"}}, nil, "")
	if err != nil {
		st.fail(ref, err)
		return
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var s container.StatsResponse
		if err := dec.Decode(&s); err != nil {
			if err != io.EOF {
				st.fail(ref, err)
			}
			return
		}
		st.set(ref, newStatsRow(ref, &s, trunc))
	}
}

func (st *statsTable) set(ref string, r statsRow) {
	st.mu.Lock()
	st.rows[ref] = r
	st.mu.Unlock()
}

// fail records a container's error: an unknown container is an error of
// the command, as with docker.
func (st *statsTable) fail(ref string, err error) {
	st.mu.Lock()
	if st.err == nil {
		st.err = apiError(err, 1)
	}
	st.mu.Unlock()
}

func (st *statsTable) done() bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.ended == len(st.refs)
}

// print writes the table; live, over the last one (cursor home, clear).
func (st *statsTable) print(w io.Writer, format string, live bool) error {
	st.mu.Lock()
	rows := make([]any, 0, len(st.refs))
	for _, ref := range st.refs {
		if r, ok := st.rows[ref]; ok {
			rows = append(rows, r)
		}
	}
	err := st.err
	st.mu.Unlock()
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if live {
		buf.WriteString("\033[2J\033[H")
	}
	if err := printRows(&buf, format, statsHeader, rows); err != nil {
		return err
	}
	_, err = w.Write(buf.Bytes())
	return err
}
