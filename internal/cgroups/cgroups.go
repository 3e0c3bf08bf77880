package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Manager owns one container's cgroup.
//
// Lifecycle: New (nothing touched yet), Apply (cgroup created, process
// moved in), Set (limits written; may be called again to update), and
// Destroy once every process in it has exited.
type Manager interface {
	// Apply creates the cgroup if needed and moves pid into it.
	Apply(pid int) error
	// Set writes the resource limits r.
	Set(r *specs.LinuxResources) error
	// Pids lists the processes in the cgroup.
	Pids() ([]int, error)
	// Freeze stops every process in the cgroup; Thaw lets them run again.
	Freeze() error
	Thaw() error
	// Frozen reports whether the cgroup is frozen.
	Frozen() (bool, error)
	// Destroy removes the cgroup. It fails while processes remain.
	Destroy() error
	// OOMKills counts the processes the kernel's OOM killer ended in it.
	OOMKills() (uint64, error)
	// Stats reads the cgroup's counters.
	Stats() (*Stats, error)
	// Dir returns the cgroup's directory in the hierarchy of controller
	// (v1), or its unified directory (v2, controller ignored).
	Dir(controller string) string
}

// ErrNoController means a limit was asked of a controller the host lacks.
var ErrNoController = errors.New("cgroup controller not available")

// Unified reports whether the host runs cgroup v2 alone (unified mode).
func Unified() bool {
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		return false
	}
	return st.Type == unix.CGROUP2_SUPER_MAGIC
}

// BlkioWeightSupported reports whether block I/O weights can be set on
// this host: on cgroup v1 the blkio hierarchy has a weight file (CFQ's
// blkio.weight or BFQ's blkio.bfq.weight, which only some I/O schedulers
// bring); on v2 it is left to the write (io.weight lives in non-root
// cgroups only).
func BlkioWeightSupported() bool {
	if Unified() {
		return true
	}
	mounts, err := v1Mounts()
	if err != nil {
		return false
	}
	dir := mounts["blkio"]
	return dir != "" && (exists(dir, "blkio.weight") || exists(dir, "blkio.bfq.weight"))
}

// New returns the manager for cgroup path on this host's cgroup version.
func New(path string) (Manager, error) {
	if !filepath.IsAbs(path) {
		path = "/" + path
	}
	path = filepath.Clean(path)
	if path == "/" {
		return nil, fmt.Errorf("cgroup path %q: refusing the root cgroup", path)
	}
	if Unified() {
		return &v2{root: "/sys/fs/cgroup", dir: filepath.Join("/sys/fs/cgroup", path)}, nil
	}
	mounts, err := v1Mounts()
	if err != nil {
		return nil, err
	}
	return &v1{path: path, mounts: mounts}, nil
}

// ErrRenameUnsupported: the host's cgroups cannot be renamed (v2).
var ErrRenameUnsupported = errors.New("cgroups cannot be renamed on this host (cgroup v2)")

// Rename gives cgroup from, processes and all, the path to, which must
// have the same parent. Moving a process into a cgroup waits for an RCU
// grace period (the kernel's threadgroup lock: ~7 ms on this host, once
// per container start), which renaming a cgroup the process joined
// ahead of time does not (a spare's prestarted init: package runtime).
// Only cgroup v1 renames cgroups (v2: ErrRenameUnsupported).
func Rename(from, to string) error {
	m, err := New(from)
	if err != nil {
		return err
	}
	v, ok := m.(*v1)
	if !ok {
		return ErrRenameUnsupported
	}
	to = filepath.Clean("/" + to)
	if filepath.Dir(to) != filepath.Dir(v.path) {
		return fmt.Errorf("cgroup: rename %s to %s: not the same parent", v.path, to)
	}
	return v.rename(to)
}

// Children lists the cgroups below parent, by name, in any hierarchy
// (on v1 a cgroup half made may be in some hierarchies only).
func Children(parent string) []string {
	m, err := New(parent)
	if err != nil {
		return nil
	}
	dirs := []string{m.Dir("")}
	if v, ok := m.(*v1); ok {
		dirs = nil
		for _, mp := range v.hierarchies() {
			dirs = append(dirs, filepath.Join(mp, v.path))
		}
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() && !seen[e.Name()] {
				seen[e.Name()] = true
				out = append(out, e.Name())
			}
		}
	}
	return out
}

// ConvertPath turns an OCI cgroupsPath into a cgroupfs path. An empty path
// becomes "/<id>". With systemd set, the "slice:prefix:name" form becomes
// the path systemd would use ("/system.slice/prefix-name.scope"), so that
// --systemd-cgroup callers get the same layout from the cgroupfs driver.
func ConvertPath(cgroupsPath, id string, systemd bool) (string, error) {
	if !systemd {
		if cgroupsPath == "" {
			return "/" + id, nil
		}
		return cgroupsPath, nil
	}
	if cgroupsPath == "" {
		return "/system.slice/tent-" + id + ".scope", nil
	}
	parts := strings.Split(cgroupsPath, ":")
	if len(parts) != 3 {
		return "", fmt.Errorf("systemd cgroup path %q: want slice:prefix:name", cgroupsPath)
	}
	slice, prefix, name := parts[0], parts[1], parts[2]
	if slice == "" {
		slice = "system.slice"
	}
	dir, err := expandSlice(slice)
	if err != nil {
		return "", err
	}
	unit := name
	if !strings.HasSuffix(name, ".slice") {
		if prefix != "" {
			unit = prefix + "-" + name
		}
		unit += ".scope"
	}
	return filepath.Join(dir, unit), nil
}

// expandSlice maps "a-b-c.slice" to "/a.slice/a-b.slice/a-b-c.slice".
func expandSlice(slice string) (string, error) {
	if !strings.HasSuffix(slice, ".slice") || strings.Contains(slice, "/") {
		return "", fmt.Errorf("invalid systemd slice %q", slice)
	}
	name := strings.TrimSuffix(slice, ".slice")
	if name == "-" {
		return "/", nil
	}
	var b strings.Builder
	prefix := ""
	for _, part := range strings.Split(name, "-") {
		if part == "" {
			return "", fmt.Errorf("invalid systemd slice %q", slice)
		}
		b.WriteString("/" + prefix + part + ".slice")
		prefix += part + "-"
	}
	return b.String(), nil
}

// write puts value into dir/file, with the file name in any error.
func write(dir, file, value string) error {
	if err := os.WriteFile(filepath.Join(dir, file), []byte(value), 0); err != nil {
		return fmt.Errorf("cgroup: write %q to %s: %w", value, filepath.Join(dir, file), err)
	}
	return nil
}

func read(dir, file string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, file))
	return strings.TrimSpace(string(b)), err
}

func exists(dir, file string) bool {
	_, err := os.Stat(filepath.Join(dir, file))
	return err == nil
}

// readPids parses a cgroup.procs file.
func readPids(dir string) ([]int, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			pids = append(pids, n)
		}
	}
	return pids, nil
}

// removeDir removes a cgroup directory, retrying briefly while the kernel
// finishes tearing down exited tasks (rmdir answers EBUSY meanwhile).
func removeDir(dir string) error {
	var err error
	for i := 0; i < 50; i++ {
		err = unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) {
			break
		}
		sleepBackoff(i)
	}
	return fmt.Errorf("cgroup: remove %s: %w", dir, err)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func utoa(n uint64) string { return strconv.FormatUint(n, 10) }

// readKeyed reads one counter of a flat keyed file ("key value" lines),
// such as memory.events or memory.oom_control; a missing key is zero.
func readKeyed(path, key string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == key {
			return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, nil
}
