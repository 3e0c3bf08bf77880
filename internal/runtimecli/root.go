package runtimecli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/version"
)

// Version is tent's version (internal/version, set at build time).
var Version = version.Version

// globals are runc's global flags.
type globals struct {
	root          string
	log           string
	logFormat     string
	debug         bool
	systemdCgroup bool
	rootless      string
	criu          string
}

func (g *globals) runtime() (*runtime.Runtime, error) {
	return runtime.New(g.root, runtime.WithSystemdCgroup(g.systemdCgroup))
}

// exitError carries an exit status without a message (the container's own).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// Main runs the command line and returns the process's exit status.
func Main(args []string) int {
	g := &globals{}
	root := &cobra.Command{
		Use:           "tent-runtime",
		Short:         "tent's OCI runtime, with runc's command line",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("tent-runtime version {{.Version}}\nspec: " + specVersion() + "\n")
	f := root.PersistentFlags()
	f.StringVar(&g.root, "root", runtime.DefaultRoot, "root directory for storage of container state")
	f.StringVar(&g.log, "log", "", "append errors to this file (default: stderr only)")
	f.StringVar(&g.logFormat, "log-format", "text", "log format: text or json")
	f.BoolVar(&g.debug, "debug", false, "enable debug logging")
	f.BoolVar(&g.systemdCgroup, "systemd-cgroup", false, "read cgroupsPath as slice:prefix:name")
	f.StringVar(&g.rootless, "rootless", "auto", "accepted for runc compatibility")
	f.StringVar(&g.criu, "criu", "criu", "accepted for runc compatibility")
	root.AddCommand(
		createCmd(g), startCmd(g), runCmd(g), stateCmd(g), killCmd(g), deleteCmd(g),
		execCmd(g), psCmd(g), pauseCmd(g), resumeCmd(g), listCmd(g), featuresCmd(),
		specCmd(), updateCmd(g),
	)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	g.logError(err)
	return 1
}

// logError reports err on stderr and, with --log, in the log file, where
// containerd looks for the reason a runtime call failed.
func (g *globals) logError(err error) {
	fmt.Fprintf(os.Stderr, "tent-runtime: %v\n", err)
	if g.log == "" {
		return
	}
	f, ferr := os.OpenFile(g.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if ferr != nil {
		return
	}
	defer f.Close()
	writeLog(f, g.logFormat, "error", err.Error())
}

func writeLog(w io.Writer, format, level, msg string) {
	now := time.Now().UTC().Format(time.RFC3339Nano)
	if format == "json" {
		b, _ := json.Marshal(map[string]string{"level": level, "msg": msg, "time": now})
		fmt.Fprintf(w, "%s\n", b)
		return
	}
	fmt.Fprintf(w, "time=%q level=%s msg=%q\n", now, level, msg)
}

// exactArgs is cobra.ExactArgs with runc's wording.
func exactArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return fmt.Errorf("%q requires exactly %d argument(s): %s", cmd.Name(), n, usage)
		}
		return nil
	}
}

func minArgs(n int, usage string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < n {
			return fmt.Errorf("%q requires at least %d argument(s): %s", cmd.Name(), n, usage)
		}
		return nil
	}
}

// writePidFile writes pid atomically: a reader never sees a partial file.
func writePidFile(path string, pid int) error {
	if path == "" {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(fmt.Sprint(pid)), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
