// Package cgroups places container processes in control groups and writes
// their resource limits, on both cgroup v1 (one hierarchy per controller,
// as on hybrid hosts) and cgroup v2 (one unified hierarchy), behind the
// Manager interface.
//
// Terms: a cgroup "path" is the OCI cgroupsPath, relative to the root of
// every hierarchy ("/tent/abc"); a "dir" is that path joined to one
// hierarchy's mount point ("/sys/fs/cgroup/memory/tent/abc").
package cgroups
