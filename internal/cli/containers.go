package cli

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/container"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/client"
	"github.com/tent-project/tent/internal/streams"
	"golang.org/x/term"
)

func (a *app) create(req *container.CreateRequest, name string) (string, error) {
	q := url.Values{}
	if name != "" {
		q.Set("name", name)
	}
	var resp container.CreateResponse
	err := a.c.JSON(a.ctx, http.MethodPost, "/containers/create", q, req, &resp)
	if err != nil {
		if client.StatusOf(err) == http.StatusNotFound { // the image: the only thing create looks up by name
			fmt.Fprintf(os.Stderr, "Unable to find image '%s' locally\n", req.Image)
		}
		return "", apiError(err, 125)
	}
	for _, w := range resp.Warnings {
		fmt.Fprintln(os.Stderr, "WARNING:", w)
	}
	return resp.ID, nil
}

func createCmd(a *app) *cobra.Command {
	f := &ctrFlags{}
	cmd := &cobra.Command{
		Use: "create [OPTIONS] IMAGE [COMMAND] [ARG...]", Short: "Create a new container",
		Args: cobra.MinimumNArgs(1),
	}
	cmd.RunE = a.runE(func(args []string) error {
		// As docker's: a created container is one to attach to
		// (start -a), its stdin closed with the attachment's.
		req, err := f.config(cmd, args[0], args[1:], true)
		if err != nil {
			return statusError{code: 125, msg: "tent: " + err.Error()}
		}
		id, err := a.create(req, f.name)
		if err == nil {
			fmt.Println(id)
		}
		return err
	})
	f.add(cmd.Flags())
	return cmd
}

func simpleCmd(a *app, use, short string, fn func(id string) error) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error { return forEach(args, fn) })
	return cmd
}

func startCmd(a *app) *cobra.Command {
	var checkpoint, detachKeys string
	var attach, interactive bool
	cmd := &cobra.Command{Use: "start [OPTIONS] CONTAINER [CONTAINER...]", Short: "Start one or more stopped containers", Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{}
		if checkpoint != "" {
			q.Set("checkpoint", checkpoint)
		}
		if !attach && !interactive {
			return forEach(args, func(id string) error {
				return a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/start", q, nil, nil)
			})
		}
		if len(args) > 1 {
			return statusError{code: 1, msg: "tent: you cannot start and attach multiple containers at once"}
		}
		if checkpoint != "" {
			return statusError{code: 1, msg: "tent: --checkpoint cannot be used with --attach or --interactive"}
		}
		keys, err := streams.ParseDetachKeys(detachKeys)
		if err != nil {
			return statusError{code: 125, msg: "tent: " + err.Error()}
		}
		var c container.InspectResponse
		if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/"+args[0]+"/json", nil, nil, &c); err != nil {
			return err
		}
		stdin := interactive && c.Config.OpenStdin
		if c.Config.Tty && stdin && !term.IsTerminal(int(os.Stdin.Fd())) {
			return statusError{code: 1, msg: "the input device is not a TTY"}
		}
		return a.runAttached(c.ID, stdin, c.Config.Tty, c.HostConfig.AutoRemove, keys)
	})
	cmd.Flags().StringVar(&checkpoint, "checkpoint", "", "restore from this checkpoint")
	cmd.Flags().BoolVarP(&attach, "attach", "a", false, "attach STDOUT/STDERR and forward signals")
	cmd.Flags().BoolVarP(&interactive, "interactive", "i", false, "attach container's STDIN")
	cmd.Flags().StringVar(&detachKeys, "detach-keys", "", "override the key sequence for detaching a container")
	return cmd
}

func stopCmd(a *app) *cobra.Command {
	var t int
	var sig string
	cmd := simpleCmd(a, "stop [OPTIONS] CONTAINER [CONTAINER...]", "Stop one or more running containers", nil)
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{}
		if cmd.Flags().Changed("time") {
			q.Set("t", strconv.Itoa(t))
		}
		if sig != "" {
			q.Set("signal", sig)
		}
		return forEach(args, func(id string) error {
			return a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/stop", q, nil, nil)
		})
	})
	cmd.Flags().IntVarP(&t, "time", "t", 10, "seconds to wait before killing the container")
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send to the container")
	return cmd
}

func restartCmd(a *app) *cobra.Command {
	var t int
	var sig string
	cmd := simpleCmd(a, "restart [OPTIONS] CONTAINER [CONTAINER...]", "Restart one or more containers", nil)
	cmd.Flags().StringVarP(&sig, "signal", "s", "", "signal to send to the container")
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{}
		if cmd.Flags().Changed("time") {
			q.Set("t", strconv.Itoa(t))
		}
		if sig != "" {
			q.Set("signal", sig)
		}
		return forEach(args, func(id string) error {
			return a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/restart", q, nil, nil)
		})
	})
	cmd.Flags().IntVarP(&t, "time", "t", 10, "seconds to wait before killing the container")
	return cmd
}

func killCmd(a *app) *cobra.Command {
	var sig string
	cmd := simpleCmd(a, "kill [OPTIONS] CONTAINER [CONTAINER...]", "Kill one or more running containers", nil)
	cmd.RunE = a.runE(func(args []string) error {
		return forEach(args, func(id string) error {
			return a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/kill", url.Values{"signal": {sig}}, nil, nil)
		})
	})
	cmd.Flags().StringVarP(&sig, "signal", "s", "KILL", "signal to send to the container")
	return cmd
}

func rmCmd(a *app) *cobra.Command {
	var force, volumes bool
	cmd := simpleCmd(a, "rm [OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers", nil)
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{"force": {strconv.FormatBool(force)}, "v": {strconv.FormatBool(volumes)}}
		return forEach(args, func(id string) error {
			return a.c.JSON(a.ctx, http.MethodDelete, "/containers/"+id, q, nil, nil)
		})
	})
	cmd.Flags().BoolVarP(&force, "force", "f", false, "force the removal of a running container (uses SIGKILL)")
	cmd.Flags().BoolVarP(&volumes, "volumes", "v", false, "remove anonymous volumes associated with the container")
	return cmd
}

func waitCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{Use: "wait CONTAINER [CONTAINER...]", Short: "Block until one or more containers stop, then print their exit codes", Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		failed := false
		for _, id := range args {
			var r container.WaitResponse
			if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/"+id+"/wait", nil, nil, &r); err != nil {
				fmt.Fprintln(os.Stderr, apiError(err, 1).Error())
				failed = true
				continue
			}
			fmt.Println(r.StatusCode)
		}
		if failed {
			return statusError{code: 1}
		}
		return nil
	})
	return cmd
}

// displayPorts is ps's PORTS column as the docker CLI writes it: the
// ports in order of container port, host address, host port and
// protocol; a run of consecutive ports published on the same numbers
// (or not published) is one range ("0.0.0.0:8000-8002->8000-8002/tcp",
// "80-81/tcp"), others are listed one by one after those.
func displayPorts(ports []container.PortSummary) string {
	ports = slices.Clone(ports)
	slices.SortFunc(ports, func(a, b container.PortSummary) int {
		return cmp.Or(cmp.Compare(a.PrivatePort, b.PrivatePort), cmp.Compare(a.IP.String(), b.IP.String()),
			cmp.Compare(a.PublicPort, b.PublicPort), cmp.Compare(a.Type, b.Type))
	})
	type run struct {
		ip         string // "": not published
		proto      string
		first, end uint16
	}
	format := func(r *run) string {
		s := strconv.Itoa(int(r.first))
		if r.end != r.first {
			s += "-" + strconv.Itoa(int(r.end))
		}
		if r.ip != "" {
			s = net.JoinHostPort(r.ip, s) + "->" + s
		}
		return s + "/" + r.proto
	}
	// A run that breaks is written at once; the last of each address
	// and protocol at the end, in the order they first came.
	var out, mapped []string
	var keys [][2]string
	open := map[[2]string]*run{}
	for _, p := range ports {
		ip := ""
		if p.IP.IsValid() {
			if p.PublicPort != p.PrivatePort {
				mapped = append(mapped, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(p.IP.String(), strconv.Itoa(int(p.PublicPort))), p.PrivatePort, p.Type))
				continue
			}
			ip = p.IP.String()
		}
		key := [2]string{ip, p.Type}
		r := open[key]
		switch {
		case r == nil:
			keys = append(keys, key)
		case p.PrivatePort == r.end+1:
			r.end = p.PrivatePort
			continue
		default:
			out = append(out, format(r))
		}
		open[key] = &run{ip: ip, proto: p.Type, first: p.PrivatePort, end: p.PrivatePort}
	}
	for _, k := range keys {
		out = append(out, format(open[k]))
	}
	return strings.Join(append(out, mapped...), ", ")
}

// psRow is one line of `ps`, with docker's --format field names.
type psRow struct {
	ID, Image, Command, CreatedAt, RunningFor, Ports, State, Status, Names, Labels, Mounts, Networks, Size string
}

func psCmd(a *app) *cobra.Command {
	var all, quiet, noTrunc bool
	var format string
	var filter []string
	var last int
	cmd := &cobra.Command{Use: "ps [OPTIONS]", Short: "List containers", Args: cobra.NoArgs}
	cmd.RunE = a.runE(func([]string) error {
		q := url.Values{"all": {strconv.FormatBool(all)}}
		if last > 0 {
			q.Set("limit", strconv.Itoa(last))
			q.Set("all", "true")
		}
		if fs, err := filtersParam(filter); err != nil {
			return err
		} else if fs != "" {
			q.Set("filters", fs)
		}
		var list []container.Summary
		if err := a.c.JSON(a.ctx, http.MethodGet, "/containers/json", q, nil, &list); err != nil {
			return apiError(err, 1)
		}
		if quiet {
			format = "{{.ID}}"
		}
		if format == "" {
			format = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
		}
		var rows []any
		for _, c := range list {
			id, command := c.ID, c.Command
			if !noTrunc {
				id = id[:12]
				if len(command) > 20 {
					command = command[:19] + "…"
				}
			}
			var labels []string
			for k, v := range c.Labels {
				labels = append(labels, k+"="+v)
			}
			var names []string
			for _, n := range c.Names {
				names = append(names, strings.TrimPrefix(n, "/"))
			}
			created := time.Unix(c.Created, 0)
			rows = append(rows, psRow{ID: id, Image: c.Image, Command: strconv.Quote(command),
				CreatedAt: created.Format("2006-01-02 15:04:05 -0700 MST"), RunningFor: units.HumanDuration(time.Since(created)) + " ago",
				Ports: displayPorts(c.Ports), State: string(c.State), Status: c.Status, Names: strings.Join(names, ","), Labels: strings.Join(labels, ",")})
		}
		header := map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND", "CreatedAt": "CREATED AT",
			"RunningFor": "CREATED", "Ports": "PORTS", "State": "STATE", "Status": "STATUS", "Names": "NAMES", "Labels": "LABELS"}
		return printRows(os.Stdout, format, header, rows)
	})
	f := cmd.Flags()
	f.BoolVarP(&all, "all", "a", false, "show all containers (default shows just running)")
	f.BoolVarP(&quiet, "quiet", "q", false, "only display container IDs")
	f.BoolVar(&noTrunc, "no-trunc", false, "don't truncate output")
	f.StringVar(&format, "format", "", "format output using a Go template, 'table ...' or 'json'")
	f.StringArrayVarP(&filter, "filter", "f", nil, "filter output based on conditions provided")
	f.IntVarP(&last, "last", "n", 0, "show n last created containers (includes all states)")
	return cmd
}

// filtersParam encodes key=value filters as the API's JSON.
// filterQuery is the query of a list request with --filter values.
func filterQuery(list []string) (url.Values, error) {
	q := url.Values{}
	fs, err := filtersParam(list)
	if fs != "" {
		q.Set("filters", fs)
	}
	return q, err
}

func filtersParam(list []string) (string, error) {
	if len(list) == 0 {
		return "", nil
	}
	m := map[string]map[string]bool{}
	for _, f := range list {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return "", statusError{code: 1, msg: fmt.Sprintf("bad format of filter (expected name=value): %s", f)}
		}
		if m[k] == nil {
			m[k] = map[string]bool{}
		}
		m[k][v] = true
	}
	b, err := json.Marshal(m)
	return string(b), err
}

func logsCmd(a *app) *cobra.Command {
	var follow, timestamps bool
	var tail, since, until string
	cmd := &cobra.Command{Use: "logs [OPTIONS] CONTAINER", Short: "Fetch the logs of a container", Args: cobra.ExactArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		q := url.Values{"stdout": {"1"}, "stderr": {"1"}, "follow": {strconv.FormatBool(follow)},
			"timestamps": {strconv.FormatBool(timestamps)}, "tail": {tail}, "since": {since}, "until": {until}}
		resp, err := a.c.Do(a.ctx, http.MethodGet, "/containers/"+args[0]+"/logs", q, nil, "")
		if err != nil {
			return apiError(err, 1)
		}
		defer resp.Body.Close()
		if strings.Contains(resp.Header.Get("Content-Type"), "raw-stream") {
			_, err = io.Copy(os.Stdout, resp.Body)
			return err
		}
		return streams.Demux(os.Stdout, os.Stderr, resp.Body)
	})
	f := cmd.Flags()
	f.BoolVarP(&follow, "follow", "f", false, "follow log output")
	f.BoolVarP(&timestamps, "timestamps", "t", false, "show timestamps")
	f.StringVarP(&tail, "tail", "n", "all", "number of lines to show from the end of the logs")
	f.StringVar(&since, "since", "", "show logs since timestamp or relative (e.g. 42m)")
	f.StringVar(&until, "until", "", "show logs before a timestamp or relative (e.g. 42m)")
	return cmd
}

func execCmd(a *app) *cobra.Command {
	var interactive, tty, detach bool
	var env []string
	var user, workdir string
	cmd := &cobra.Command{Use: "exec [OPTIONS] CONTAINER COMMAND [ARG...]", Short: "Execute a command in a running container", Args: cobra.MinimumNArgs(2)}
	cmd.Flags().SetInterspersed(false)
	cmd.RunE = a.runE(func(args []string) error {
		req := container.ExecCreateRequest{Cmd: args[1:], Env: env, User: user, WorkingDir: workdir, Tty: tty,
			AttachStdin: interactive && !detach, AttachStdout: !detach, AttachStderr: !detach}
		var created container.ExecCreateResponse
		if err := a.c.JSON(a.ctx, http.MethodPost, "/containers/"+args[0]+"/exec", nil, req, &created); err != nil {
			return apiError(err, 1)
		}
		start := container.ExecStartRequest{Detach: detach, Tty: tty}
		if detach {
			if err := a.c.JSON(a.ctx, http.MethodPost, "/exec/"+created.ID+"/start", nil, start, nil); err != nil {
				return apiError(err, 1)
			}
			return nil
		}
		conn, br, err := a.c.Hijack(a.ctx, "/exec/"+created.ID+"/start", nil, start)
		if err != nil {
			return apiError(err, 1)
		}
		defer conn.Close()
		restore, _ := a.relay(conn, br, interactive, tty, nil, func(h, w int) {
			a.c.JSON(a.ctx, http.MethodPost, "/exec/"+created.ID+"/resize", url.Values{"h": {fmt.Sprint(h)}, "w": {fmt.Sprint(w)}}, nil, nil)
		})
		restore()
		var info container.ExecInspectResponse
		if err := a.c.JSON(a.ctx, http.MethodGet, "/exec/"+created.ID+"/json", nil, nil, &info); err != nil {
			return apiError(err, 1)
		}
		if info.ExitCode != nil && *info.ExitCode != 0 {
			return statusError{code: *info.ExitCode}
		}
		return nil
	})
	f := cmd.Flags()
	f.BoolVarP(&interactive, "interactive", "i", false, "keep STDIN open even if not attached")
	f.BoolVarP(&tty, "tty", "t", false, "allocate a pseudo-TTY")
	f.BoolVarP(&detach, "detach", "d", false, "detached mode: run command in the background")
	f.StringArrayVarP(&env, "env", "e", nil, "set environment variables")
	f.StringVarP(&user, "user", "u", "", "username or UID (format: <name|uid>[:<group|gid>])")
	f.StringVarP(&workdir, "workdir", "w", "", "working directory inside the container")
	return cmd
}

func inspectCmd(a *app) *cobra.Command { return inspectKindCmd(a, "") }

// inspectKindCmd is `inspect` (kind "": a container, else an image),
// `container inspect` (kind "container"), `image inspect` ("image") or
// `volume inspect` ("volume").
func inspectKindCmd(a *app, kind string) *cobra.Command {
	var format string
	use, short := "inspect [OPTIONS] NAME|ID [NAME|ID...]", "Return low-level information on containers or images"
	switch kind {
	case "container":
		use, short = "inspect [OPTIONS] CONTAINER [CONTAINER...]", "Display detailed information on one or more containers"
	case "image":
		use, short = "inspect [OPTIONS] IMAGE [IMAGE...]", "Display detailed information on one or more images"
	case "volume":
		use, short = "inspect [OPTIONS] VOLUME [VOLUME...]", "Display detailed information on one or more volumes"
	case "network":
		use, short = "inspect [OPTIONS] NETWORK [NETWORK...]", "Display detailed information on one or more networks"
	}
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.MinimumNArgs(1)}
	cmd.RunE = a.runE(func(args []string) error {
		var items []any
		failed := false
		for _, ref := range args {
			var v any
			var err error
			switch kind {
			case "volume":
				err = a.c.JSON(a.ctx, http.MethodGet, "/volumes/"+ref, nil, nil, &v)
			case "network":
				err = a.c.JSON(a.ctx, http.MethodGet, "/networks/"+ref, nil, nil, &v)
			case "", "container":
				err = a.c.JSON(a.ctx, http.MethodGet, "/containers/"+ref+"/json", nil, nil, &v)
			}
			if kind == "image" || kind == "" && client.StatusOf(err) == http.StatusNotFound {
				err = a.c.JSON(a.ctx, http.MethodGet, "/images/"+ref+"/json", nil, nil, &v)
				if kind == "" && client.StatusOf(err) == http.StatusNotFound {
					err = fmt.Errorf("No such object: %s", ref)
				}
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "Error:", err)
				failed = true
				continue
			}
			items = append(items, v)
		}
		if format != "" {
			if err := printRows(os.Stdout, format, nil, items); err != nil {
				return err
			}
		} else {
			if items == nil {
				items = []any{}
			}
			b, _ := json.MarshalIndent(items, "", "    ")
			fmt.Println(string(b))
		}
		if failed {
			return statusError{code: 1}
		}
		return nil
	})
	cmd.Flags().StringVarP(&format, "format", "f", "", "format output using a Go template")
	return cmd
}
