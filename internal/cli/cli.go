package cli

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/tent-project/tent/internal/version"
)

// Version is tent's version.
var Version = version.Version

// statusError carries an exit status; its message (if any) was printed.
type statusError struct {
	code int
	msg  string
}

func (e statusError) Error() string { return e.msg }

// Main runs the tent command line and returns the exit status. `tent
// daemon` and `tent runtime` become tentd and tent-runtime (next to this
// binary, else from $PATH): the client links none of their code, so that
// every command starts fast.
func Main(args []string) int {
	if len(args) > 0 {
		switch args[0] {
		case "daemon":
			return execSibling("tentd", args[1:])
		case "runtime":
			return execSibling("tent-runtime", args[1:])
		}
	}
	root := rootCmd(args)
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

// sibling finds one of tent's binaries: next to this one, else in $PATH.
func sibling(name string) (string, error) {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return exec.LookPath(name)
}

// execSibling replaces this process with another tent binary.
func execSibling(name string, args []string) int {
	p, err := sibling(name)
	if err == nil {
		err = syscall.Exec(p, append([]string{name}, args...), os.Environ())
	}
	fmt.Fprintf(os.Stderr, "tent: %s: %v (make install puts it next to tent)\n", name, err)
	return 127
}

func rootCmd(args []string) *cobra.Command {
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
	// Listed for help; Main hands them to their own binaries.
	root.AddCommand(&cobra.Command{
		Use: "daemon", Short: "Run the tent daemon (tentd; see tent daemon --help)",
		DisableFlagParsing: true, RunE: func(*cobra.Command, []string) error { return nil },
	}, &cobra.Command{
		Use: "runtime", Short: "The OCI runtime (runc's command line); see tent runtime --help",
		DisableFlagParsing: true, RunE: func(*cobra.Command, []string) error { return nil },
	})
	addClientCommands(root, args)
	return root
}
