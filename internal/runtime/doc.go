// Package runtime creates and runs OCI containers: it turns a bundle (a
// config.json and a root filesystem) into an isolated process tree with
// namespaces, mounts, cgroups, capabilities, seccomp and rlimits, and keeps
// its state on disk so that separate invocations (create, start, kill,
// delete) can find it again. It is a library first: the daemon calls it in
// process, and cmd/tent-runtime is a runc-compatible command line over it.
//
// # How a container starts
//
// Create re-executes the running binary (from a sealed in-memory copy, so
// the container can never reach or rewrite the file on the host) as the
// container's init, in new namespaces. The two sides talk over a socket:
// the parent sends the config, places the child in its cgroup and runs the
// runtime hooks; the child builds the root filesystem, pivots into it,
// checks that the program exists, says "ready", and then blocks reading
// the exec fifo in the state directory. Start writes one byte to that
// fifo; the init then drops privileges and execs the user's program, which
// keeps the init's PID.
//
// Exec starts a process inside a running container the same way: the
// parent joins the container's namespaces on a locked OS thread before
// forking, and the child joins the mount namespace itself.
//
// # Status
//
// A container is "created" while its fifo exists and its init lives,
// "running" once started, "paused" while its cgroup is frozen, and
// "stopped" once its init has exited. The init is identified by PID and
// start time, so a recycled PID is never mistaken for it.
package runtime
