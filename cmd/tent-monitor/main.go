// Command tent-monitor supervises one container for the daemon: it
// creates the container (as the parent of its init), holds its stdio,
// writes its log and exit status, and serves attach requests. The daemon
// starts one per running container as `tent-monitor monitor DIR`.
//
// It is a separate, small binary because one runs for every container:
// a fraction of tent's code starts faster and stays smaller in memory,
// and the containers' inits (re-executions of this binary) start faster
// too. `tentd monitor DIR` does the same where this binary is missing.
package main

import (
	"fmt"
	"os"

	"github.com/tent-project/tent/internal/monitor"
	"github.com/tent-project/tent/internal/runtime"
)

func main() {
	if runtime.IsChild() {
		runtime.ChildMain()
	}
	if len(os.Args) != 3 || os.Args[1] != "monitor" {
		fmt.Fprintln(os.Stderr, "usage: tent-monitor monitor DIR (started by the tent daemon)")
		os.Exit(2)
	}
	os.Exit(monitor.Main(os.Args[2]))
}
