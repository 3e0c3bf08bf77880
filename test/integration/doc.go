// Package integration drives tent's binaries end to end as a user or an
// engine would: real kernel features, real busybox containers, and a real
// docker engine where one is installed. The tests need root.
package integration
