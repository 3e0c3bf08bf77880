package cli

import (
	"fmt"
	"os"

	"github.com/tent-project/tent/internal/runtimecli"
)

// Main runs the tent command line and returns the exit status.
func Main(args []string) int {
	if len(args) > 0 && args[0] == "runtime" {
		return runtimecli.Main(args[1:])
	}
	if len(args) > 0 && (args[0] == "version" || args[0] == "--version") {
		fmt.Printf("tent version %s\n", runtimecli.Version)
		return 0
	}
	fmt.Fprintln(os.Stderr, `usage: tent runtime <command> [flags]   (the OCI runtime; see "tent runtime --help")
       tent version
The daemon and docker-like commands are not built yet.`)
	return 2
}
