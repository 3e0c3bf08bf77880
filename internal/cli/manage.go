package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/client"
	"github.com/tent-project/tent/internal/streams"
)

// The management verbs: pause, unpause, rename, top, attach, history,
// prune, events, info, version, and the `container` group.

func pauseCmd(a *app, pause bool) *cobra.Command {
	verb, short := "pause", "Pause all processes within one or more containers"
	if !pause {
		verb, short = "unpause", "Unpause all processes within one or more containers"
	}
	return simpleCmd(a, verb+" CONTAINER [CONTAINER...]", short, func(id string) error {
		return a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/"+verb, nil, nil, nil)
	})
}

func renameCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "rename CONTAINER NEW_NAME", Short: "Rename a container", Args: cobra.ExactArgs(2)}
	cmd.RunE = a.runE(func(args []string) error {
		name := strings.TrimSpace(args[1])
		if name == "" {
			return statusError{code: 1, msg: "Error: neither old nor new names may be empty"}
		}
		if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/"+args[0]+"/rename", url.Values{"name": {name}}, nil, nil); err != nil {
			return apiError(err, 1)
		}
		return nil
	})
	return cmd
}

func topCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "top CONTAINER [ps OPTIONS]", Short: "Display the running processes of a container", Args: cobra.MinimumNArgs(1)}
	cmd.Flags().SetInterspersed(false)
	cmd.RunE = a.runE(func(args []string) error {
		var q url.Values
		if len(args) > 1 {
			q = url.Values{"ps_args": {strings.Join(args[1:], " ")}}
		}
		var top container.TopResponse
		if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/"+args[0]+"/top", q, nil, &top); err != nil {
			return apiError(err, 1)
		}
		w := tabwriter.NewWriter(os.Stdout, 20, 1, 3, ' ', 0)
		fmt.Fprintln(w, strings.Join(top.Titles, "\t"))
		for _, p := range top.Processes {
			fmt.Fprintln(w, strings.Join(p, "\t"))
		}
		return w.Flush()
	})
	return cmd
}

func attachCmd(a *app) *cobra.Command {
	var noStdin bool
	var detachKeys string
	cmd := &cobra.Command{Use: "attach [OPTIONS] CONTAINER", Short: "Attach local standard input, output, and error streams to a running container", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		var c container.InspectResponse
		if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/"+args[0]+"/json", nil, nil, &c); err != nil {
			return apiError(err, 1)
		}
		if c.State == nil || !c.State.Running {
			return statusError{code: 1, msg: "You cannot attach to a stopped container, start it first"}
		}
		if c.State.Paused {
			return statusError{code: 1, msg: "You cannot attach to a paused container, unpause it first"}
		}
		stdin := c.Config.OpenStdin && !noStdin
		keys, err := streams.ParseDetachKeys(detachKeys)
		if err != nil {
			return statusError{code: 1, msg: err.Error()}
		}
		q := url.Values{"stream": {"1"}, "stdout": {"1"}, "stderr": {"1"}}
		if stdin {
			q.Set("stdin", "1")
		}
		conn, br, err := a.c.Hijack(a.ctx, "/containers/"+c.ID+"/attach", q, nil)
		if err != nil {
			return apiError(err, 1)
		}
		defer conn.Close()
		// Registered before relaying, so the exit is not missed.
		waitResp, err := a.c.Do(a.ctx, http.MethodPost, "/containers/"+c.ID+"/wait", url.Values{"condition": {"next-exit"}}, nil, "")
		if err != nil {
			return apiError(err, 1)
		}
		defer waitResp.Body.Close()
		restore, detached := a.relay(conn, br, stdin, c.Config.Tty, keys, func(h, w int) {
			a.c.JSON(a.ctx, http.MethodPost, "/containers/"+c.ID+"/resize", url.Values{"h": {fmt.Sprint(h)}, "w": {fmt.Sprint(w)}}, nil, nil)
		})
		restore()
		if detached {
			return nil
		}
		var status container.WaitResponse
		if err := json.NewDecoder(waitResp.Body).Decode(&status); err == nil && status.StatusCode != 0 {
			return statusError{code: int(status.StatusCode)}
		}
		return nil
	})
	cmd.Flags().BoolVar(&noStdin, "no-stdin", false, "do not attach STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	cmd.Flags().Bool("sig-proxy", true, "proxy all received signals to the process")
	return cmd
}

// historyRow is one line of `history`, with docker's --format names.
type historyRow struct {
	ID, CreatedSince, CreatedAt, CreatedBy, Size, Comment string
}

func historyCmd(a *app) *cobra.Command {
	var human, noTrunc, quiet bool
	var format string
	cmd := &cobra.Command{Use: "history [OPTIONS] IMAGE", Short: "Show the history of an image", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		var items []image.HistoryResponseItem
		if err := a.c.JSON(a.ctx, http.MethodGet, "/images/"+args[0]+"/history", nil, nil, &items); err != nil {
			return apiError(err, 1)
		}
		if quiet {
			format = "{{.ID}}"
		}
		if format == "" {
			format = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
		}
		var rows []any
		for _, h := range items {
			r := historyRow{ID: h.ID, CreatedBy: h.CreatedBy, Comment: h.Comment}
			if r.ID == "" || r.ID == "<missing>" {
				r.ID = "<missing>"
			} else if !noTrunc {
				r.ID = shortHex(r.ID)
			}
			created := time.Unix(h.Created, 0)
			if human {
				r.CreatedSince = units.HumanDuration(time.Since(created)) + " ago"
				r.CreatedAt = created.Format(time.RFC3339)
				r.Size = units.HumanSizeWithPrecision(float64(h.Size), 3)
			} else {
				r.CreatedSince = created.Format(time.RFC3339)
				r.CreatedAt = r.CreatedSince
				r.Size = strconv.FormatInt(h.Size, 10)
			}
			if !noTrunc {
				r.CreatedBy = ellipsis(strings.ReplaceAll(r.CreatedBy, "\t", " "), 45)
			}
			rows = append(rows, r)
		}
		header := map[string]string{"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
			"CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
		return printRows(os.Stdout, format, header, rows)
	})
	f := cmd.Flags()
	// No -H: it is the global --host here.
	f.BoolVar(&human, "human", true, "print sizes and dates in human readable format")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	return cmd
}

// shortHex is the 12-digit short form of an ID ("sha256:..." or bare).
func shortHex(id string) string {
	_, hex, ok := strings.Cut(id, ":")
	if !ok {
		hex = id
	}
	if len(hex) > 12 {
		hex = hex[:12]
	}
	return hex
}

// ellipsis shortens s to n characters, the last one "…" (as docker's
// tables do).
func ellipsis(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// confirm asks the prune question on the terminal, as docker does.
func confirm(warning string) bool {
	fmt.Printf("%s\nAre you sure you want to continue? [y/N] ", warning)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	answer := strings.ToLower(strings.TrimSpace(line))
	return answer == "y" || answer == "yes"
}

// pruneCmd makes `container prune` and `image prune`: a confirmation
// (unless -f), the API call, and docker's report.
func pruneCmd(a *app, what string) *cobra.Command {
	var force, all bool
	var filter []string
	cmd := &cobra.Command{Use: "prune [OPTIONS]", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		warning := "WARNING! This will remove all stopped containers."
		if what == "images" {
			warning = "WARNING! This will remove all dangling images."
			if all {
				warning = "WARNING! This will remove all images without at least one container associated to them."
			}
		}
		if !force && !confirm(warning) {
			return nil
		}
		if what == "images" {
			filter = append(filter, "dangling="+strconv.FormatBool(!all))
		}
		q, err := filterQuery(filter)
		if err != nil {
			return err
		}
		var deleted []string
		var reclaimed uint64
		title := "Deleted Containers:"
		if what == "images" {
			title = "Deleted Images:"
			var r image.PruneReport
			if err := a.c.JSON(a.ctx, http.MethodPost, "/images/prune", q, nil, &r); err != nil {
				return apiError(err, 1)
			}
			for _, d := range r.ImagesDeleted {
				if d.Untagged != "" {
					deleted = append(deleted, "untagged: "+d.Untagged)
				}
				if d.Deleted != "" {
					deleted = append(deleted, "deleted: "+d.Deleted)
				}
			}
			reclaimed = r.SpaceReclaimed
		} else {
			var r container.PruneReport
			if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/prune", q, nil, &r); err != nil {
				return apiError(err, 1)
			}
			deleted, reclaimed = r.ContainersDeleted, r.SpaceReclaimed
		}
		printPruned(title, deleted, reclaimed)
		return nil
	})
	f := cmd.Flags()
	f.BoolVarP(&force, "force", "f", false, "do not prompt for confirmation")
	f.StringArrayVar(&filter, "filter", nil, "provide filter values (e.g. 'until=<timestamp>')")
	if what == "images" {
		cmd.Short = "Remove unused images"
		f.BoolVarP(&all, "all", "a", false, "remove all unused images, not just dangling ones")
	} else {
		cmd.Short = "Remove all stopped containers"
	}
	return cmd
}

func eventsCmd(a *app) *cobra.Command {
	var since, until, format string
	var filter []string
	cmd := &cobra.Command{Use: "events [OPTIONS]", Short: "Get real time events from the server", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		q := url.Values{}
		for k, v := range map[string]string{"since": since, "until": until} {
			if v != "" {
				t, err := timestampParam(v)
				if err != nil {
					return statusError{code: 1, msg: err.Error()}
				}
				q.Set(k, t)
			}
		}
		if fs, err := filtersParam(filter); err != nil {
			return err
		} else if fs != "" {
			q.Set("filters", fs)
		}
		resp, err := a.c.Do(a.ctx, http.MethodGet, "/events", q, nil, "")
		if err != nil {
			return apiError(err, 1)
		}
		defer resp.Body.Close()
		dec := json.NewDecoder(resp.Body)
		for {
			var m events.Message
			if err := dec.Decode(&m); err != nil {
				return nil // the stream ended (--until, or the daemon went)
			}
			if format != "" {
				if err := printRows(os.Stdout, format, nil, []any{m}); err != nil {
					return err
				}
				continue
			}
			fmt.Println(eventLine(m))
		}
	})
	f := cmd.Flags()
	f.StringVar(&since, "since", "", "show all events created since timestamp")
	f.StringVar(&until, "until", "", "stream events until this timestamp")
	f.StringArrayVarP(&filter, "filter", "f", nil, "filter output based on conditions provided")
	f.StringVar(&format, "format", "", "format output using a Go template or 'json'")
	return cmd
}

// eventLine is docker's plain event line:
// "2026-11-23T02:30:00.123456789Z container start ID (image=..., name=...)".
func eventLine(m events.Message) string {
	t := time.Unix(0, m.TimeNano)
	if m.TimeNano == 0 {
		t = time.Unix(m.Time, 0)
	}
	line := fmt.Sprintf("%s %s %s %s", t.Format("2006-01-02T15:04:05.000000000Z07:00"), m.Type, m.Action, m.Actor.ID)
	if len(m.Actor.Attributes) > 0 {
		var kv []string
		for k, v := range m.Actor.Attributes {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		line += " (" + strings.Join(kv, ", ") + ")"
	}
	return line
}

// timestampParam turns a --since/--until value (RFC 3339, a Unix time, or
// a duration like 10m meaning that long ago) into the API's Unix seconds.
func timestampParam(v string) (string, error) {
	if d, err := time.ParseDuration(v); err == nil {
		return strconv.FormatInt(time.Now().Add(-d).Unix(), 10), nil
	}
	if _, err := strconv.ParseFloat(v, 64); err == nil {
		return v, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return strconv.FormatInt(t.Unix(), 10), nil
		}
	}
	return "", fmt.Errorf("invalid timestamp %q: use RFC 3339, a Unix time or a duration (10m)", v)
}

func infoCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{Use: "info [OPTIONS]", Short: "Display system-wide information", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		var info map[string]any
		if err := a.c.JSON(a.ctx, http.MethodGet, "/info", nil, nil, &info); err != nil {
			return apiError(err, 1)
		}
		if format != "" {
			return printRows(os.Stdout, format, nil, []any{info})
		}
		fmt.Printf("Client:\n Version:    %s\n\nServer:\n", Version)
		lines := []struct{ label, key string }{
			{"Containers", "Containers"}, {" Running", "ContainersRunning"}, {" Paused", "ContainersPaused"},
			{" Stopped", "ContainersStopped"}, {"Images", "Images"}, {"Server Version", "ServerVersion"},
			{"Storage Driver", "Driver"}, {"Logging Driver", "LoggingDriver"}, {"Cgroup Driver", "CgroupDriver"},
			{"Cgroup Version", "CgroupVersion"}, {"Default Runtime", "DefaultRuntime"}, {"Kernel Version", "KernelVersion"},
			{"Operating System", "OperatingSystem"}, {"OSType", "OSType"}, {"Architecture", "Architecture"},
			{"CPUs", "NCPU"}, {"Total Memory", "MemTotal"}, {"Name", "Name"}, {"ID", "ID"},
			{"Docker Root Dir", "DockerRootDir"}, {"Debug Mode", "Debug"},
		}
		for _, l := range lines {
			v, ok := info[l.key]
			if !ok {
				continue
			}
			s := fmt.Sprint(v)
			switch n := v.(type) {
			case float64:
				s = strconv.FormatFloat(n, 'f', -1, 64)
				if l.key == "MemTotal" {
					s = units.BytesSize(n)
				}
			}
			fmt.Printf(" %s: %s\n", l.label, s)
		}
		if regs, ok := info["RegistryConfig"].(map[string]any); ok {
			if cidrs, ok := regs["InsecureRegistryCIDRs"].([]any); ok && len(cidrs) > 0 {
				fmt.Println(" Insecure Registries:")
				for _, c := range cidrs {
					fmt.Printf("  %v\n", c)
				}
			}
		}
		return nil
	})
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}

func versionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "version", Short: "Show the tent version information", Args: cobra.NoArgs}
	cmd.RunE = func(*cobra.Command, []string) error {
		fmt.Printf("Client:\n Version:           %s\n API version:       %s\n Go version:        %s\n OS/Arch:           %s/%s\n",
			Version, client.APIVersion, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		if err := a.connect(); err != nil {
			return statusError{code: 1, msg: "\n" + err.Error()}
		}
		var v map[string]any
		if err := a.c.JSON(a.ctx, http.MethodGet, "/version", nil, nil, &v); err != nil {
			return apiError(err, 1)
		}
		fmt.Printf("\nServer:\n Engine:\n  Version:          %v\n  API version:      %v (minimum version %v)\n  Go version:       %v\n  OS/Arch:          %v/%v\n",
			v["Version"], v["ApiVersion"], v["MinAPIVersion"], v["GoVersion"], v["Os"], v["Arch"])
		return nil
	}
	return cmd
}

// containerCmd is the `container` group: docker's management command
// names for the container verbs.
func containerCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "container", Short: "Manage containers"}
	ls := psCmd(a)
	ls.Use, ls.Aliases = "ls [OPTIONS]", []string{"list", "ps"}
	inspect := inspectKindCmd(a, "container")
	cmd.AddCommand(ls, inspect, runCmd(a), createCmd(a), startCmd(a), stopCmd(a), killCmd(a), rmCmd(a),
		restartCmd(a), logsCmd(a), waitCmd(a), execCmd(a), attachCmd(a), pauseCmd(a, true), pauseCmd(a, false),
		renameCmd(a), topCmd(a), pruneCmd(a, "containers"))
	return cmd
}
