// Package nsenter joins a user namespace before the Go runtime starts.
//
// The kernel lets only a single-threaded process join a user namespace,
// and a Go program has several threads before its first line of Go runs.
// So tent's binaries are linked with Entry as their entry point
// (-ldflags -E=github.com/tent-project/tent/internal/nsenter.Entry): a few
// instructions of assembly that look for UserNSEnv in the environment and,
// if it names a descriptor, call setns(fd, CLONE_NEWUSER), then continue
// into the Go runtime's usual entry. Go code reads the outcome with
// UserNSResult. There is no C anywhere: this is the whole of it.
package nsenter
