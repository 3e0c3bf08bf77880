// Package seccomp compiles the seccomp section of an OCI config into a
// classic BPF program and installs it, in pure Go (no libseccomp).
//
// The program checks the architecture first (one section per architecture
// the profile lists and tent has a syscall table for; any other
// architecture is killed, as libseccomp does), then tries the rules in
// order: the first rule whose syscall and argument conditions match
// decides, and a syscall no rule matches gets the default action.
package seccomp
