package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/client"
)

// app is what the client commands share: the daemon's address and a
// client once connected.
type app struct {
	host string
	c    *client.Client
	ctx  context.Context
}

func addClientCommands(root *cobra.Command, args []string) {
	a := &app{ctx: context.Background()}
	root.PersistentFlags().StringVarP(&a.host, "host", "H", "", "daemon address (default $TENT_HOST or "+client.DefaultHost+")")
	// Only the command asked for is built when it is known: building all
	// of them (their flag sets) is a tenth of a command's start-up.
	if mk, ok := clientCommands[verb(args)]; ok {
		root.AddCommand(mk(a))
		return
	}
	for _, mk := range clientCommands {
		root.AddCommand(mk(a))
	}
}

// clientCommands are the top-level verbs, by name.
var clientCommands = map[string]func(*app) *cobra.Command{
	"run": runCmd, "create": createCmd, "start": startCmd, "checkpoint": checkpointCmd, "stop": stopCmd, "kill": killCmd,
	"rm": rmCmd, "ps": psCmd, "logs": logsCmd, "wait": waitCmd, "exec": execCmd,
	"inspect": inspectCmd, "restart": restartCmd, "images": imagesCmd, "image": imageCmd,
	"import": importCmd, "load": loadCmd, "save": saveCmd, "tag": tagCmd, "rmi": rmiCmd,
	"pull": pullCmd, "push": pushCmd, "login": loginCmd, "logout": func(*app) *cobra.Command { return logoutCmd() },
	"pause":   func(a *app) *cobra.Command { return pauseCmd(a, true) },
	"unpause": func(a *app) *cobra.Command { return pauseCmd(a, false) },
	"rename":  renameCmd, "top": topCmd, "attach": attachCmd, "history": historyCmd,
	"events": eventsCmd, "info": infoCmd, "version": versionCmd, "container": containerCmd, "volume": volumeCmd,
	"network": networkCmd, "port": portCmd, "build": buildCmd, "builder": builderCmd,
	"diff": diffCmd, "export": exportCmd, "commit": commitCmd, "cp": cpCmd,
	"stats": statsCmd, "update": updateCmd, "system": systemCmd,
}

// verb is the first argument that is neither a global flag nor its value.
func verb(args []string) string {
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-H" || a == "--host":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a
		}
	}
	return ""
}

// connect finds the daemon: --host, then $TENT_HOST, then the default
// socket, where a daemon is started if none answers (so that a first
// `tent run` just works).
func (a *app) connect() error {
	if a.c != nil {
		return nil
	}
	host := a.host
	if host == "" {
		host = os.Getenv("TENT_HOST")
	}
	auto := host == ""
	if auto {
		host = client.DefaultHost
	}
	c, err := client.New(host)
	if err != nil {
		return err
	}
	a.c = c
	// An address given is used as it is (its errors come with the first
	// request); the default one is checked, to start a daemon there.
	if !auto || c.Ping(2*time.Second) {
		return nil
	}
	return startDaemon(c)
}

// startDaemon starts tentd in the background with the default
// settings, logging to DataRoot/daemon.log, and waits until it answers.
func startDaemon(c *client.Client) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("no tent daemon answers on %s, and only root can start one", client.DefaultHost)
	}
	exe, err := sibling("tentd")
	if err != nil {
		return fmt.Errorf("no tent daemon answers on %s, and tentd is not installed: %w", client.DefaultHost, err)
	}
	if err := os.MkdirAll(client.DefaultDataRoot, 0o711); err != nil {
		return err
	}
	logPath := filepath.Join(client.DefaultDataRoot, "daemon.log")
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(exe)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the tent daemon: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if c.Ping(time.Second) {
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("the tent daemon exited (%v); see %s", err, logPath)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("the tent daemon did not answer within 15s; see %s", logPath)
}

// runE wraps a command body that needs the daemon.
func (a *app) runE(fn func(args []string) error) func(*cobra.Command, []string) error {
	return func(_ *cobra.Command, args []string) error {
		if err := a.connect(); err != nil {
			return err
		}
		return fn(args)
	}
}

// apiError prints an error the way docker does and returns status 1 (or
// code, for commands that have their own).
func apiError(err error, code int) error {
	if client.StatusOf(err) != 0 {
		return statusError{code: code, msg: "Error response from daemon: " + err.Error()}
	}
	return statusError{code: code, msg: err.Error()}
}

// forEach runs fn for each argument, reporting each failure and failing
// at the end if any did (as docker's rm, stop, kill do).
func forEach(args []string, fn func(string) error) error {
	failed := false
	for _, arg := range args {
		if err := fn(arg); err != nil {
			fmt.Fprintln(os.Stderr, apiError(err, 1).Error())
			failed = true
			continue
		}
		fmt.Println(arg)
	}
	if failed {
		return statusError{code: 1}
	}
	return nil
}

// templateFuncs are the helpers of --format templates, as docker's.
var templateFuncs = template.FuncMap{
	"json": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	"join":  strings.Join,
	"upper": strings.ToUpper,
	"lower": strings.ToLower,
	"truncate": func(s string, n int) string {
		if len(s) > n {
			return s[:n]
		}
		return s
	},
}

// printRows prints rows with a --format: "table ..." (with a header),
// a plain template, or "json".
func printRows(w io.Writer, format string, header map[string]string, rows []any) error {
	if format == "json" {
		format = "{{json .}}"
	}
	table := strings.HasPrefix(format, "table")
	format = strings.TrimSpace(strings.TrimPrefix(format, "table"))
	format = strings.ReplaceAll(format, `\t`, "\t")
	tmpl, err := template.New("format").Funcs(templateFuncs).Parse(format + "\n")
	if err != nil {
		return statusError{code: 1, msg: "template parsing error: " + err.Error()}
	}
	out := w
	var tw *tabwriter.Writer
	if table {
		tw = tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
		out = tw
		if err := tmpl.Execute(out, header); err != nil {
			return err
		}
	}
	for _, r := range rows {
		if err := tmpl.Execute(out, r); err != nil {
			return statusError{code: 1, msg: "template: " + err.Error()}
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}
