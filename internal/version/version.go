// Package version holds tent's version, set at build time:
// -ldflags '-X github.com/tent-project/tent/internal/version.Version=...'.
package version

// Version is the version of every tent binary.
var Version = "0.1.0-dev"
