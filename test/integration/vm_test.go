package integration

import (
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tent-project/tent/internal/vm"
)

// requireVM skips where the host cannot boot tent's VMs: no QEMU or no
// guest kernel (scripts/deps.sh installs both).
func requireVM(t *testing.T) {
	t.Helper()
	if _, err := vm.NewHost(vm.DefaultGuestDir, filepath.Join(filepath.Dir(tentBin()), "tent-agent"), t.TempDir()); err != nil {
		t.Skip(err)
	}
}

// TestVMIsolation drives VM containers with the docker CLI as a user
// would: the program runs on the guest's own kernel, its output, stdin,
// exit status and signals pass as a container's, its disk is its own and
// lasts across runs, and what VMs do not have yet is refused.
func TestVMIsolation(t *testing.T) {
	requireVM(t)
	e := startTent(t)
	vmRun := []string{"run", "--isolation", "vm", "--network", "none"}
	run := func(args ...string) []string { return append(append([]string(nil), vmRun...), args...) }

	var host unix.Utsname
	unix.Uname(&host)
	out, errOut, code := e.runIn(nil, run("--rm", "busybox", "sh", "-c", "echo out; echo err >&2; uname -r; exit 3")...)
	if code != 3 || errOut != "err\n" || !strings.HasPrefix(out, "out\n") {
		t.Fatalf("a VM's output and status: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if kernel := strings.TrimSpace(strings.TrimPrefix(out, "out\n")); kernel == "" || kernel == unix.ByteSliceToString(host.Release[:]) {
		t.Errorf("the VM runs on kernel %q, the host's is %q: not its own", kernel, host.Release)
	}
	if out, _, code := e.runIn(strings.NewReader("piped in\n"), run("--rm", "-i", "busybox", "sh", "-c", "cat; echo done")...); code != 0 || out != "piped in\ndone\n" {
		t.Errorf("stdin into a VM: exit %d, %q", code, out)
	}
	// As in a container, the program is PID 1 and sees only its own
	// processes: the same command prints the same in a process container.
	view := []string{"--rm", "-u", "1000:1000", "-w", "/tmp", "-e", "FOO=bar", "-h", "guest", "busybox", "sh", "-c", "id -u; pwd; echo $FOO; hostname; echo $$; cat /proc/1/comm; ps -o comm | grep -c -e tent -e init -e qemu; true"}
	inVM, inCtr := e.must(t, run(view...)...), e.must(t, append([]string{"run", "--network", "none"}, view...)...)
	if inVM != "1000\n/tmp\nbar\nguest\n1\nsh\n0\n" || inVM != inCtr {
		t.Errorf("user, cwd, env, hostname and PID 1 in a VM: %q, in a container %q", inVM, inCtr)
	}
	if _, errOut, code := e.runIn(nil, run("--rm", "busybox", "nosuchcmd")...); code != 127 || !strings.Contains(errOut, `"nosuchcmd": executable file not found`) {
		t.Errorf("a missing command in a VM: exit %d, %q", code, errOut)
	}

	// Volumes and binds reach the guest (9p): what a VM writes in a volume
	// a process container reads, owner included; a read-only bind stays
	// so; a tmpfs is the guest's.
	e.must(t, "volume", "create", "shared")
	e.must(t, run("--rm", "-v", "shared:/data", "busybox", "sh", "-c", "echo from the VM > /data/f; chown 1000:1000 /data/f")...)
	if out := e.must(t, "run", "--rm", "--network", "none", "-v", "shared:/data", "busybox", "sh", "-c", "cat /data/f; stat -c %u:%g /data/f"); out != "from the VM\n1000:1000\n" {
		t.Errorf("a volume a VM wrote, read by a container: %q", out)
	}
	hostDir := t.TempDir()
	os.WriteFile(filepath.Join(hostDir, "in"), []byte("from the host\n"), 0o644)
	if out, _, code := e.runIn(nil, run("--rm", "-v", hostDir+":/ro:ro", "--tmpfs", "/scratch", "busybox", "sh", "-c",
		"cat /ro/in; touch /ro/new 2>/dev/null && echo wrote; grep -c ' /scratch tmpfs ' /proc/mounts")...); code != 0 || out != "from the host\n1\n" {
		t.Errorf("a read-only bind and a tmpfs in a VM: exit %d, %q", code, out)
	}
	if _, err := os.Stat(filepath.Join(hostDir, "new")); err == nil {
		t.Error("a VM wrote through a read-only bind")
	}
	// Binds of single files: the guest reads and writes the host's file
	// itself (a read-only one stays so), and sees none of its neighbours.
	os.WriteFile(filepath.Join(hostDir, "app.conf"), []byte("setting=1\n"), 0o644)
	os.WriteFile(filepath.Join(hostDir, "log"), []byte("host line\n"), 0o644)
	if out, errOut, code := e.runIn(nil, run("--rm", "-v", filepath.Join(hostDir, "app.conf")+":/etc/app.conf:ro", "-v", filepath.Join(hostDir, "log")+":/var/log/app.log", "busybox", "sh", "-c",
		"cat /etc/app.conf; (echo x >> /etc/app.conf) 2>/dev/null && echo wrote; echo guest line >> /var/log/app.log; ls /var/log; grep -c ' /etc/app.conf ' /proc/mounts")...); code != 0 || out != "setting=1\napp.log\n1\n" {
		t.Errorf("binds of single files in a VM: exit %d, %q %s", code, out, errOut)
	}
	if b, _ := os.ReadFile(filepath.Join(hostDir, "log")); string(b) != "host line\nguest line\n" {
		t.Errorf("the host's file after a VM appended to its bind: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(hostDir, "app.conf")); string(b) != "setting=1\n" {
		t.Errorf("a file bound read-only after the VM: %q", b)
	}
	e.must(t, "volume", "rm", "shared")

	// The container's disk is its own and lasts across runs; the image's
	// base disk is made once for both containers.
	for _, name := range []string{"disk1", "disk2"} {
		e.must(t, run("--name", name, "busybox", "sh", "-c", "cat /state 2>/dev/null; echo run >> /state")...)
	}
	if out := e.must(t, "start", "-a", "disk1"); out != "run\n" {
		t.Errorf("the second run of a VM container sees %q in its disk, want its first run's", out)
	}
	if out := e.must(t, "logs", "disk2"); out != "" {
		t.Errorf("a second container of the image saw the first one's writes: %q", out)
	}
	// cp out of a stopped VM reads its disk, cp into one writes its
	// overlay (and the guest sees it at its next start).
	outDir := t.TempDir()
	e.must(t, "cp", "disk1:/state", outDir)
	if b, _ := os.ReadFile(filepath.Join(outDir, "state")); string(b) != "run\nrun\n" {
		t.Errorf("cp out of a stopped VM: %q", b)
	}
	e.must(t, "cp", filepath.Join(outDir, "state"), "disk1:/new")
	back := t.TempDir()
	e.must(t, "cp", "disk1:/new", back)
	if b, _ := os.ReadFile(filepath.Join(back, "new")); string(b) != "run\nrun\n" {
		t.Errorf("cp into a stopped VM, read back: %q", b)
	}
	// docker create, cp, start: the disk is made for the cp.
	create := append([]string{"create"}, run("--name", "cpin", "busybox", "cat", "/given")[1:]...)
	e.must(t, create...)
	e.must(t, "cp", filepath.Join(outDir, "state"), "cpin:/given")
	if out := e.must(t, "start", "-a", "cpin"); out != "run\nrun\n" {
		t.Errorf("a VM after cp into it sees %q", out)
	}
	e.must(t, "rm", "cpin")
	// export reads the VM's own disk: the image's files and what it wrote.
	if list, _, code := e.runIn(nil, "export", "disk1"); code != 0 || !strings.Contains(list, "bin/busybox") || !strings.Contains(list, "state") || strings.Contains(list, "lost+found") {
		t.Errorf("export of a VM container: exit %d, %d bytes, busybox %v, its file %v, lost+found %v", code, len(list),
			strings.Contains(list, "bin/busybox"), strings.Contains(list, "state"), strings.Contains(list, "lost+found"))
	}
	// diff and commit of a stopped VM: what its disk changed over its
	// image's base disk, as a container's over its image (the engine's
	// /etc files and the disk's lost+found are not the container's); the
	// committed layer runs as a container's.
	if vmDiff := e.must(t, "diff", "disk1"); vmDiff != "A /new\nA /state\n" {
		t.Errorf("diff of a VM container %q, want its one file", vmDiff)
	}
	e.must(t, "commit", "disk1", "vmcommitted:1")
	if out := e.must(t, "run", "--rm", "--network", "none", "vmcommitted:1", "cat", "/state"); out != "run\nrun\n" {
		t.Errorf("the committed VM's file in a container: %q", out)
	}
	if n := e.must(t, "image", "inspect", "-f", "{{len .RootFS.Layers}}", "vmcommitted:1"); n != "2\n" {
		t.Errorf("layers of a VM's commit: %s, want the image's and one", n)
	}
	// A running VM: cp out, diff and commit see what its guest wrote a
	// moment ago (the agent writes its page cache to the disk first).
	e.must(t, run("-d", "--name", "running", "busybox", "sh", "-c", "echo live > /live; touch /ready; sleep 600")...)
	eventually(t, "the running VM's /ready", func() error {
		if out, code := e.run("exec", "running", "test", "-e", "/ready"); code != 0 {
			return errString("not yet: " + out)
		}
		return nil
	})
	e.must(t, "cp", "running:/live", outDir)
	if b, _ := os.ReadFile(filepath.Join(outDir, "live")); string(b) != "live\n" {
		t.Errorf("cp out of a running VM: %q", b)
	}
	// cp into it: its guest writes the files (owned as -a asks, a
	// directory's tree too); what it cannot take is refused as for a
	// container.
	e.must(t, "exec", "running", "mkdir", "/in")
	e.must(t, "cp", filepath.Join(outDir, "live"), "running:/in/copied")
	e.must(t, "cp", outDir, "running:/in/tree")
	if out := e.must(t, "exec", "running", "sh", "-c", "cat /in/copied /in/tree/live; stat -c %u /in/copied"); out != "live\nlive\n0\n" {
		t.Errorf("cp into a running VM: %q", out)
	}
	if _, errOut, code := e.runIn(nil, "cp", outDir, "running:/in/copied"); code == 0 || !strings.Contains(errOut, "cannot copy directory") {
		t.Errorf("cp of a directory onto a running VM's file: exit %d %q", code, errOut)
	}
	e.must(t, "exec", "running", "rm", "-r", "/in")
	if vmDiff := e.must(t, "diff", "running"); vmDiff != "A /live\nA /ready\n" {
		t.Errorf("diff of a running VM %q", vmDiff)
	}
	e.must(t, "commit", "running", "vmlive:1")
	if out := e.must(t, "run", "--rm", "--network", "none", "vmlive:1", "cat", "/live"); out != "live\n" {
		t.Errorf("a running VM's commit in a container: %q", out)
	}
	// Killed, its disk is read as after a crash: the journal replayed.
	e.must(t, "exec", "running", "sh", "-c", "echo synced > /synced; sync")
	e.must(t, "kill", "running")
	e.must(t, "cp", "running:/synced", outDir)
	if b, _ := os.ReadFile(filepath.Join(outDir, "synced")); string(b) != "synced\n" {
		t.Errorf("cp out of a killed VM: %q", b)
	}
	e.must(t, "rm", "-f", "running")
	e.must(t, "rmi", "vmcommitted:1", "vmlive:1")
	if bases, _ := filepath.Glob(filepath.Join(e.dir, "data", "vm", "disks", "*.ext4")); len(bases) != 1 {
		t.Errorf("base disks for one image: %v", bases)
	}
	disk := filepath.Join(e.dir, "data", "containers", strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "disk1")), "vm-disk.qcow2")
	if _, err := os.Stat(disk); err != nil {
		t.Errorf("the container's overlay: %v", err)
	}
	e.must(t, "rm", "disk1", "disk2")
	waitFor(t, "rm to remove the container's disk", func() bool { _, err := os.Stat(disk); return os.IsNotExist(err) })

	// A detached VM: logs, stop by its signal, inspect, and a kill.
	e.must(t, run("-d", "--name", "svc", "-m", "96m", "busybox", "sh", "-c", `trap "echo got TERM; exit 0" TERM; echo started; while true; do sleep 1; done`)...)
	waitFor(t, "the VM's first line", func() bool { return e.out("logs", "svc") == "started\n" })
	if out := e.must(t, "inspect", "-f", "{{.State.Running}} {{.HostConfig.Isolation}} {{.HostConfig.Runtime}}", "svc"); out != "true vm tent-vm\n" {
		t.Errorf("inspect of a running VM: %q", out)
	}
	// exec runs in the guest, beside the workload, with its own stdio,
	// user, terminal and exit status.
	if out, errOut, code := e.runIn(strings.NewReader("to the exec\n"), "exec", "-i", "-u", "1000", "svc", "sh", "-c", "cat; id -u; echo err >&2; exit 5"); code != 5 || out != "to the exec\n1000\n" || errOut != "err\n" {
		t.Errorf("exec in a VM: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if out := e.must(t, "exec", "-t", "svc", "tty"); !strings.HasPrefix(out, "/dev/pts/") {
		t.Errorf("exec -t in a VM: %q", out)
	}
	if out := e.must(t, "exec", "svc", "sh", "-c", "cat /proc/1/cmdline | tr '\\0' ' '; echo"); !strings.HasPrefix(out, "sh -c trap") {
		t.Errorf("exec does not see the workload as PID 1: %q", out)
	}
	if _, errOut, code := e.runIn(nil, "exec", "svc", "nosuchcmd"); code == 0 || !strings.Contains(errOut, "executable file not found") {
		t.Errorf("exec of a missing command in a VM: exit %d %q", code, errOut)
	}
	// What a VM cannot do yet is refused, not ignored.
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"run", "--rm", "--isolation", "vm", "--network", "host", "busybox", "true"}, "--network host and container:"},
		{[]string{"run", "--rm", "--isolation", "vm", "--network", "none", "--cap-drop", "ALL", "busybox", "true"}, "--cap-add and --cap-drop"},
		{[]string{"run", "--rm", "--isolation", "vm", "--network", "none", "--sysctl", "net.ipv4.ip_forward=1", "busybox", "true"}, "--sysctl"},
		{[]string{"run", "--rm", "--isolation", "vm", "--network", "none", "--security-opt", "no-new-privileges", "busybox", "true"}, "no-new-privileges"},
		{[]string{"run", "--rm", "--isolation", "vm", "--runtime", "tent", "busybox", "true"}, "conflicting options"},
	} {
		if _, errOut, code := e.runIn(nil, tc.args...); code == 0 || !strings.Contains(errOut, tc.msg) {
			t.Errorf("docker %v: exit %d %q, want an error saying %q", tc.args, code, errOut, tc.msg)
		}
	}
	// docker stats counts what the VM costs the host: QEMU, in the
	// container's cgroup, held to --cpus; the guest's network is not the host's.
	e.must(t, run("-d", "--name", "burner", "--cpus", "0.5", "busybox", "sh", "-c", "while :; do :; done")...)
	time.Sleep(4 * time.Second) // booted, and burning
	stats := strings.Split(strings.TrimSpace(e.must(t, "stats", "--no-stream", "--format", "{{.CPUPerc}}|{{.MemUsage}}|{{.NetIO}}", "burner")), "|")
	if cpu, err := strconv.ParseFloat(strings.TrimSuffix(stats[0], "%"), 64); err != nil || cpu < 25 || cpu > 75 || !strings.HasSuffix(stats[1], "GiB") && !strings.HasSuffix(stats[1], "MiB") || stats[2] != "0B / 0B" {
		t.Errorf("stats of a VM held to 0.5 CPUs: %q", stats)
	}
	// update changes a running VM's CPU limit; its memory is its size.
	e.must(t, "update", "--cpus", "0.25", "burner")
	burner := strings.TrimSpace(e.must(t, "inspect", "-f", "{{.Id}}", "burner"))
	if q := cgroupFile(t, burner, "cpu", "cpu.cfs_quota_us", "cpu.max"); !strings.HasPrefix(q, "25000") {
		t.Errorf("the VM's CPU quota after update --cpus 0.25: %q", q)
	}
	if _, errOut, code := e.runIn(nil, "update", "-m", "200m", "--memory-swap", "400m", "burner"); code == 0 || !strings.Contains(errOut, "memory or pids limit") {
		t.Errorf("update -m of a running VM: exit %d %q", code, errOut)
	}
	e.must(t, "rm", "-f", "burner")
	// A paused VM runs nothing: its ticker writes no line until unpaused.
	e.must(t, run("-d", "--name", "ticker", "busybox", "sh", "-c", "while true; do echo tick; sleep 0.1; done")...)
	waitFor(t, "the ticker's first line", func() bool { return e.out("logs", "ticker") != "" })
	e.must(t, "pause", "ticker")
	if st := e.must(t, "inspect", "-f", "{{.State.Status}}", "ticker"); st != "paused\n" {
		t.Errorf("a paused VM's status: %q", st)
	}
	before := e.out("logs", "ticker")
	time.Sleep(time.Second)
	if after := e.out("logs", "ticker"); after != before {
		t.Errorf("a paused VM went on: %d lines, then %d", strings.Count(before, "\n"), strings.Count(after, "\n"))
	}
	e.must(t, "unpause", "ticker")
	waitFor(t, "the unpaused ticker", func() bool { return e.out("logs", "ticker") != before })
	e.must(t, "rm", "-f", "ticker")
	// On a network a VM is the container: named on a user network (with
	// IPv6), reached from a process container, its published port from
	// the host.
	e.must(t, "network", "create", "--ipv6", "--subnet", "fd00:190::/64", "vmnet")
	e.must(t, "run", "-d", "--name", "web", "--isolation", "vm", "--network", "vmnet", "-p", "127.0.0.1:18090:80", "busybox", "sh", "-c",
		`echo "hello from the VM" > /tmp/page; while true; do nc -l -p 80 < /tmp/page; done`)
	var page string
	waitFor(t, "the VM's server", func() bool {
		page, _, _ = e.runIn(nil, "run", "--rm", "--network", "vmnet", "busybox", "nc", "-w", "2", "web", "80")
		return page != ""
	})
	if page != "hello from the VM\n" {
		t.Errorf("a process container asking the VM by name: %q", page)
	}
	if out := e.must(t, "exec", "web", "ip", "-6", "-o", "addr", "show", "scope", "global"); !strings.Contains(out, "fd00:190::2/64") {
		t.Errorf("the VM's IPv6 address:\n%s", out)
	}
	waitFor(t, "a process container to the VM over IPv6", func() bool {
		_, code := e.run("run", "--rm", "--network", "vmnet", "busybox", "ping", "-6", "-c1", "-W2", "web")
		return code == 0
	})
	// The server answers one connection at a time (nc in a loop): a
	// refusal between two is retried.
	waitFor(t, "the VM's published port", func() bool {
		conn, err := net.DialTimeout("tcp", "127.0.0.1:18090", 5*time.Second)
		if err != nil {
			return false
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		b, _ := io.ReadAll(conn)
		conn.Close()
		page = string(b)
		return page != ""
	})
	if page != "hello from the VM\n" {
		t.Errorf("the VM's published port answered %q", page)
	}
	if out := e.must(t, "run", "--rm", "--isolation", "vm", "busybox", "sh", "-c", "ping -c1 -W5 $(ip route | awk '/default/{print $3}') >/dev/null && echo reached"); out != "reached\n" {
		t.Errorf("a VM on the default bridge and its gateway: %q", out)
	}
	e.must(t, "rm", "-f", "web")
	e.must(t, "network", "rm", "vmnet")
	// The VM outlives its daemon, as a container does.
	e.kill9()
	e.start()
	if out := e.must(t, "inspect", "-f", "{{.State.Running}}", "svc"); out != "true\n" {
		t.Errorf("after a daemon restart the VM is %q", out)
	}
	e.must(t, "stop", "svc")
	if out := e.must(t, "inspect", "-f", "{{.State.ExitCode}}", "svc"); out != "0\n" {
		t.Errorf("a stopped VM's exit code: %q (its TERM trap exits 0)", out)
	}
	if out := e.must(t, "logs", "svc"); out != "started\ngot TERM\n" {
		t.Errorf("a stopped VM's log: %q", out)
	}
	e.must(t, "start", "svc")
	waitFor(t, "the VM's restart", func() bool { return e.out("logs", "svc") == "started\ngot TERM\nstarted\n" })
	e.must(t, "kill", "svc")
	if out := e.must(t, "inspect", "-f", "{{.State.Running}} {{.State.ExitCode}}", "svc"); out != "false 137\n" {
		t.Errorf("a killed VM: %q", out)
	}
	e.must(t, "rm", "svc")
	// Health checks run through exec, in the guest.
	e.must(t, run("-d", "--name", "checked", "--health-cmd", "test -e /tmp/ok", "--health-interval", "1s", "busybox", "sh", "-c", "sleep 2; touch /tmp/ok; sleep 1000")...)
	waitFor(t, "the VM's health check", func() bool { return e.out("inspect", "-f", "{{.State.Health.Status}}", "checked") == "healthy\n" })
	e.must(t, "rm", "-f", "checked")
	if info := e.must(t, "info", "-f", "{{range $k, $v := .Runtimes}}{{$k}} {{end}}"); !strings.Contains(info, "tent-vm") {
		t.Errorf("info's runtimes: %q", info)
	}
	// The accelerator is probed (KVM, else TCG, as on this PVM host) and
	// a TCG host is told why.
	accel := e.must(t, "info", "-f", `{{(index .Runtimes "tent-vm").Status.accelerator}}`)
	warnings := e.must(t, "info", "-f", "{{range .Warnings}}{{.}}|{{end}}")
	if accel != "kvm\n" && accel != "tcg\n" || accel == "tcg\n" != strings.Contains(warnings, "runs under TCG emulation") {
		t.Errorf("info: the VM accelerator %q, warnings %q", accel, warnings)
	}
}

// waitFor polls cond for up to a minute (a VM boots in seconds under TCG).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(time.Minute); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// TestVMWalls: what a VM isolates that a container does not. Even
// --privileged, its workload sees none of the host's processes or
// mounts; a kernel panic in its guest ends that VM alone (exit 255: the
// VM died), while another VM and the host run on.
func TestVMWalls(t *testing.T) {
	requireVM(t)
	e := startTent(t)
	e.must(t, "run", "-d", "--name", "neighbour", "--isolation", "vm", "--network", "none", "busybox", "sleep", "600")
	// In the guest: the processes it sees, whether any host mount shows
	// (the engine's data root is below e.dir), then a panic (sysrq c).
	out, _, code := e.runIn(nil, "run", "--name", "panicker", "--isolation", "vm", "--network", "none", "--privileged", "busybox", "sh", "-c",
		"ls -d /proc/[0-9]* | wc -l; grep -c "+filepath.Base(e.dir)+" /proc/mounts; sync; echo c > /proc/sysrq-trigger; sleep 30; echo survived")
	lines := strings.Fields(out)
	if len(lines) < 2 {
		t.Fatalf("the privileged VM said %q (exit %d)", out, code)
	}
	if n, _ := strconv.Atoi(lines[0]); n == 0 || n > 5 {
		t.Errorf("a privileged VM sees %s processes: not only its own", lines[0])
	}
	if lines[1] != "0" {
		t.Errorf("a privileged VM sees %s of the host's mounts under %s", lines[1], e.dir)
	}
	if code != 255 || strings.Contains(out, "survived") {
		t.Errorf("after a guest kernel panic: exit %d, output %q; want the VM ended, 255", code, out)
	}
	if st := e.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "panicker"); st != "exited 255\n" {
		t.Errorf("the panicked VM: %q", st)
	}
	if out := e.must(t, "exec", "neighbour", "echo", "still here"); out != "still here\n" {
		t.Errorf("the other VM after the panic: %q", out)
	}
	e.must(t, "rm", "-f", "neighbour", "panicker")
}

// TestVMTemplates: VMs of one size start from one template (docs/vm.md):
// their QEMU maps the template's memory and loads its state instead of
// booting a kernel (docker top shows QEMU's command line), the guest has
// the host's clock, and a disk of its own; a VM with a volume boots, as
// every VM does with tentd --vm-templates=false.
func TestVMTemplates(t *testing.T) {
	requireVM(t)
	e := startTent(t)
	// started runs a VM and says whether it started from a template.
	started := func(name string, args ...string) (fromTemplate bool) {
		t.Helper()
		e.must(t, append(append([]string{"run", "-d", "--name", name, "--isolation", "vm", "--network", "none"}, args...), "busybox", "sleep", "1d")...)
		defer e.run("rm", "-f", name)
		before := time.Now().Unix()
		out := e.must(t, "exec", name, "sh", "-c", "date +%s; echo "+name+" > /mine; cat /mine")
		f := strings.Fields(out)
		if len(f) != 2 || f[1] != name {
			t.Fatalf("%s: the VM's output: %q", name, out)
		}
		// A booted guest reads the RTC's whole seconds at its boot.
		if clock, _ := strconv.ParseInt(f[0], 10, 64); clock < before-2 || clock > time.Now().Unix()+1 {
			t.Errorf("%s: the guest's clock %d, the host's %d..%d", name, clock, before, time.Now().Unix())
		}
		top := e.must(t, "top", name)
		booted, cloned := strings.Contains(top, " -kernel "), strings.Contains(top, "/templates/")
		if booted == cloned {
			t.Fatalf("%s: QEMU's command line neither boots a kernel nor maps a template (or both):\n%s", name, top)
		}
		return cloned
	}
	if !started("first") {
		t.Error("the first VM of its size booted: no template")
	}
	if m, _ := filepath.Glob(filepath.Join(e.dir, "data", "vm", "templates", "*", "state")); len(m) != 1 {
		t.Errorf("templates made: %v, want one", m)
	}
	time.Sleep(2500 * time.Millisecond) // a template's own clock would be behind by more than the check allows
	if !started("second") {
		t.Error("the second VM of the size booted")
	}
	if started("withvolume", "-v", "tplvol:/vol") {
		t.Error("a VM with a volume started from a template")
	}
	e.stop()
	e.flags = []string{"--vm-templates=false"}
	e.start()
	if started("third") {
		t.Error("a VM started from a template with --vm-templates=false")
	}
}

// TestVMBadInput: a VM's memory is its --memory and what its guest's
// kernel and agent take, so any --memory docker takes gives the workload
// about that much; what a VM cannot be is refused at create with its
// cause, nothing made: more memory than the host has, an image of
// another architecture (recorded by docker import --platform, as dockerd
// records it).
func TestVMBadInput(t *testing.T) {
	requireVM(t)
	e := startTent(t)
	before := e.out("ps", "-aq")
	out := e.must(t, "run", "--rm", "--isolation", "vm", "--network", "none", "-m", "6m", "busybox", "sh", "-c", "head -c 20000000 /dev/zero | wc -c; free -k | awk '/Mem:/{print $7}'")
	if f := strings.Fields(out); len(f) != 2 || f[0] != "20000000" {
		t.Errorf("a VM of docker's least memory (6 MB): %q", out)
	} else if avail, _ := strconv.Atoi(f[1]); avail < 6<<10 || avail > 64<<10 {
		t.Errorf("a VM of --memory 6m has %d KiB available, want about 6 MiB", avail)
	}
	out, code := e.run("run", "--rm", "--isolation", "vm", "-m", "100000g", "busybox", "true")
	if code != 125 || !strings.Contains(out, "is more than this host's memory") {
		t.Errorf("a VM of 100,000 GiB: exit %d: %s", code, out)
	}
	e.must(t, "create", "--name", "src", "busybox")
	export := e.command("export", "src")
	imp := e.command("import", "--platform", "linux/arm64", "-", "armbox:1")
	pipe, err := export.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	imp.Stdin = pipe
	if err := export.Start(); err != nil {
		t.Fatal(err)
	}
	if b, err := imp.CombinedOutput(); err != nil {
		t.Fatalf("docker import --platform linux/arm64: %v: %s", err, b)
	}
	export.Wait()
	e.must(t, "rm", "src")
	if arch := e.must(t, "image", "inspect", "-f", "{{.Os}}/{{.Architecture}}", "armbox:1"); arch != "linux/arm64\n" {
		t.Errorf("an image imported for linux/arm64 says %q", arch)
	}
	out, code = e.run("run", "--rm", "--isolation", "vm", "armbox:1", "true")
	if code != 125 || !strings.Contains(out, "the image is for arm64: VMs here run amd64 guests") {
		t.Errorf("an arm64 image in a VM: exit %d: %s", code, out)
	}
	if after := e.out("ps", "-aq"); after != before {
		t.Errorf("containers left by the refusals: %q", after)
	}
	if out, code := e.run("import", "--platform", "windows/amd64", "-", "winbox"); code == 0 || !strings.Contains(out, "not supported") {
		t.Errorf("import for windows: exit %d: %s", code, out)
	}
}
