package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/docker/go-units"
	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/runtimecli"
)

// Version is tent's version.
var Version = runtimecli.Version

// statusError carries an exit status; its message (if any) was printed.
type statusError struct {
	code int
	msg  string
}

func (e statusError) Error() string { return e.msg }

// Main runs the tent command line and returns the exit status.
func Main(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "runtime":
			return runtimecli.Main(args[1:])
		case "monitor": // started by the daemon, one per running container
			if len(args) != 2 {
				fmt.Fprintln(os.Stderr, "usage: tent monitor DIR (started by the daemon)")
				return 2
			}
			return monitor.Main(args[1])
		}
	}
	root := rootCmd()
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var se statusError
	if errors.As(err, &se) {
		if se.msg != "" {
			fmt.Fprintln(os.Stderr, se.msg)
		}
		return se.code
	}
	fmt.Fprintln(os.Stderr, "tent:", err)
	return 125
}

func rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "tent",
		Short:         "tent runs containers: a docker-compatible engine",
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate("tent version {{.Version}}\n")
	// No -h for help: run and create use -h for --hostname, as docker's.
	root.PersistentFlags().Bool("help", false, "print usage")
	root.AddCommand(daemonCmd())
	root.AddCommand(&cobra.Command{
		Use: "runtime", Short: "The OCI runtime (runc's command line); see tent runtime --help",
		DisableFlagParsing: true, RunE: func(*cobra.Command, []string) error { return nil },
	})
	addClientCommands(root)
	return root
}

func parseBytes(s string) (int64, error) { return units.RAMInBytes(s) }
