// Package signals parses signal names and numbers the way docker and runc
// accept them ("KILL", "SIGKILL", "9", "SIGRTMIN+3").
package signals
