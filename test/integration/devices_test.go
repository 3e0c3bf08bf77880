package integration

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tent-project/tent/internal/cgroups"
)

// hostBlockDevice is a whole disk of the host (/dev/NAME, MAJ:MIN), for
// the blkio device limits; "" when there is none.
func hostBlockDevice() (path, majmin string) {
	disks, _ := filepath.Glob("/sys/block/*/dev")
	for _, d := range disks {
		name := filepath.Base(filepath.Dir(d))
		if strings.HasPrefix(name, "loop") || strings.HasPrefix(name, "zram") {
			continue
		}
		b, err := os.ReadFile(d)
		if fi, serr := os.Stat("/dev/" + name); err == nil && serr == nil && fi.Mode()&os.ModeDevice != 0 {
			return "/dev/" + name, strings.TrimSpace(string(b))
		}
	}
	return "", ""
}

// TestRunDevicesAndLimits: --device, --device-cgroup-rule and the memory,
// blkio and cgroup namespace options were once taken and dropped; each
// must now do what it does under dockerd, which runs the same commands.
func TestRunDevicesAndLimits(t *testing.T) {
	_, e, engines, images := startPair(t)
	for name, en := range engines {
		img := images[name]
		// A device under another name, with its node's type, numbers and mode.
		if out := en.must(t, "run", "--rm", "--network", "none", "--device", "/dev/null:/dev/mynull", img,
			"sh", "-c", "stat -c '%F %t:%T %a' /dev/mynull && echo x > /dev/mynull && echo written"); out != "character special file 1:3 666\nwritten\n" {
			t.Errorf("%s: --device /dev/null:/dev/mynull: %q", name, out)
		}
		// Read-only access: the node is there, writing is denied by the cgroup.
		if out, _, _ := en.runIn(nil, "run", "--rm", "--network", "none", "--device", "/dev/full:/dev/ro:r", img,
			"sh", "-c", "head -c1 /dev/ro | wc -c; echo x > /dev/ro || echo denied"); !strings.HasPrefix(out, "1\n") || !strings.Contains(out, "denied") {
			t.Errorf("%s: --device /dev/full:/dev/ro:r: %q", name, out)
		}
		// A cgroup rule lets the container open a node it makes itself;
		// without the rule the same open is refused.
		const openFuse = "mknod /dev/f c 10 229 && (exec 3</dev/f) 2>/dev/null && echo opened || echo refused"
		if out := en.must(t, "run", "--rm", "--network", "none", "--device-cgroup-rule", "c 10:229 rwm", img, "sh", "-c", openFuse); out != "opened\n" {
			t.Errorf("%s: with --device-cgroup-rule 'c 10:229 rwm': %q", name, out)
		}
		if out := en.must(t, "run", "--rm", "--network", "none", img, "sh", "-c", openFuse); out != "refused\n" {
			t.Errorf("%s: without a rule: %q", name, out)
		}
	}
	// A privileged container has the host's devices, as dockerd gives them
	// (runc cannot start a privileged container on this host: "unable to
	// apply caps", so tent is checked alone).
	if disk, _ := hostBlockDevice(); disk != "" {
		if out := e.must(t, "run", "--rm", "--network", "none", "--privileged", "busybox", "sh", "-c", "stat -c '%F' "+disk+" && ls /dev/pts/ptmx"); out != "block special file\n/dev/pts/ptmx\n" {
			t.Errorf("--privileged: %s: %q", disk, out)
		}
	}
	if _, _, code := e.runIn(nil, "run", "--rm", "--device", "/dev/nosuch", "busybox", "true"); code == 0 {
		t.Error("--device /dev/nosuch: accepted")
	}
	if out := e.must(t, "ps", "-aq"); out != "" {
		t.Errorf("refused runs left containers: %q", out)
	}

	// --cgroupns host: the container sees the host's cgroup paths.
	if out := e.must(t, "run", "--rm", "--network", "none", "--cgroupns", "host", "busybox", "cat", "/proc/self/cgroup"); !strings.Contains(out, engineCgroupParent) {
		t.Errorf("--cgroupns host: /proc/self/cgroup:\n%s", out)
	}
	if out := e.must(t, "run", "--rm", "--network", "none", "--cgroupns", "private", "busybox", "cat", "/proc/self/cgroup"); strings.Contains(out, engineCgroupParent) {
		t.Errorf("--cgroupns private: /proc/self/cgroup:\n%s", out)
	}

	if cgroups.Unified() {
		return // swappiness and the OOM killer switch are cgroup v1's (dockerd ignores them on v2)
	}
	args := []string{"run", "-d", "--network", "none", "-m", "64m", "--memory-swappiness", "10", "--oom-kill-disable"}
	disk, majmin := hostBlockDevice()
	if disk != "" {
		args = append(args, "--device-read-bps", disk+":1mb", "--device-write-iops", disk+":100")
	}
	id := strings.TrimSpace(e.must(t, append(args, "busybox", "sleep", "1000")...))
	defer e.must(t, "rm", "-f", id)
	if got := cgroupFile(t, id, "memory", "memory.swappiness", ""); got != "10" {
		t.Errorf("memory.swappiness = %q, want 10", got)
	}
	if got := cgroupFile(t, id, "memory", "memory.oom_control", ""); !strings.Contains(got, "oom_kill_disable 1") {
		t.Errorf("memory.oom_control:\n%s", got)
	}
	if disk == "" {
		t.Log("no block device on this host: blkio device limits not checked")
		return
	}
	for file, want := range map[string]string{
		"blkio.throttle.read_bps_device":   majmin + " 1048576",
		"blkio.throttle.write_iops_device": majmin + " 100",
	} {
		if got := cgroupFile(t, id, "blkio", file, ""); got != want {
			t.Errorf("%s = %q, want %q", file, got, want)
		}
	}
}
