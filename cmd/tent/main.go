// Command tent is tent's client and (as `tent daemon`) its daemon.
package main

import (
	"os"

	"github.com/tent-project/tent/internal/cli"
	"github.com/tent-project/tent/internal/runtime"
)

func main() {
	// The daemon runs containers in process: its re-executions as a
	// container's init land here first.
	if runtime.IsChild() {
		runtime.ChildMain()
	}
	os.Exit(cli.Main(os.Args[1:]))
}
