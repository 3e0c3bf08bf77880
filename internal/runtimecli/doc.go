// Package runtimecli is the command line of tent-runtime: runc's verbs,
// flags, output formats and exit statuses, over internal/runtime, so that
// containerd, Docker and Kubernetes can use tent-runtime in runc's place.
package runtimecli
