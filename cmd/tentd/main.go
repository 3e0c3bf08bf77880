// Command tentd is the tent daemon: the Docker Engine API server, image
// store and container supervisor (`tent daemon` runs it). It also serves
// as the monitor binary (`tentd monitor DIR`) where tent-monitor is
// missing, and its re-executions as a container's init (for execs run by
// the daemon itself) land here first.
package main

import (
	"os"

	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/daemoncli"
	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/runtime"
)

func main() {
	if runtime.IsChild() {
		runtime.ChildMain()
	}
	if len(os.Args) > 1 && os.Args[1] == "copier" {
		os.Exit(copier.Main(os.Args[2:])) // docker cp's helper, see internal/copier
	}
	if len(os.Args) == 3 && os.Args[1] == "monitor" {
		os.Exit(monitor.Main(os.Args[2]))
	}
	os.Exit(daemoncli.Main(os.Args[1:]))
}
