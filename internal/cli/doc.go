// Package cli is the tent command line: docker's verbs and flags, talking
// to the daemon only through the Engine API (internal/client). Until the
// daemon lands it offers `tent runtime ...`, the OCI runtime's commands.
package cli
