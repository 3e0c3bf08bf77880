// Command tent is tent's client: docker's verbs against the tent daemon's
// API. `tent daemon` runs tentd and `tent runtime` tent-runtime, which
// sit next to it; the client links none of their code, so it starts fast.
package main

import (
	"os"

	"github.com/tent-project/tent/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:]))
}
