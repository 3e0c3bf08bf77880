// Package testutil holds helpers shared by tent's tests: gates for root
// and kernel features that skip with a reason, and fixtures such as a
// busybox bundle made from the host's static busybox.
package testutil
