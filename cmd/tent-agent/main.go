// Command tent-agent is the init of a tent VM's guest (internal/vm/agent):
// the initramfs's /init.
package main

import "github.com/tent-project/tent/internal/vm/agent"

func main() { agent.Main() }
