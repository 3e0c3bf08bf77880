// Command tent-runtime is tent's OCI runtime, with runc's command line.
package main

import (
	"os"

	"github.com/tent-project/tent/internal/runtime"
	"github.com/tent-project/tent/internal/runtimecli"
)

func main() {
	if runtime.IsChild() {
		runtime.ChildMain()
	}
	os.Exit(runtimecli.Main(os.Args[1:]))
}
