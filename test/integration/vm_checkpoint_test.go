package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestVMCheckpoint: a running VM container's whole state is saved under
// a name (tent checkpoint create) and the container goes on from it
// later (tent start --checkpoint), also after a daemon restart: the same program with its memory as
// it was (it counts on, under the same random ID it drew at its start),
// the same address on its network, exec working; --leave-running keeps
// it running; what cannot be saved is refused with its reason.
func TestVMCheckpoint(t *testing.T) {
	requireVM(t)
	e := startTent(t)
	// The program draws an ID once and counts: a fresh boot would draw
	// another and count from 1.
	e.must(t, "run", "-d", "--name", "saved", "--isolation", "vm", "busybox", "sh", "-c",
		`id=$(cat /proc/sys/kernel/random/uuid); i=0; while :; do i=$((i+1)); echo "$id $i"; sleep 0.2; done`)
	t.Cleanup(func() { e.run("rm", "-f", "saved") })
	lastLine := func() (id string, n int) {
		lines := strings.Fields(strings.ReplaceAll(e.out("logs", "saved"), "\n", " "))
		if len(lines) < 2 {
			return "", 0
		}
		n, _ = strconv.Atoi(lines[len(lines)-1])
		return lines[len(lines)-2], n
	}
	waitFor(t, "the VM's program to count to 3", func() bool { _, n := lastLine(); return n >= 3 })
	ip := e.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "saved")
	e.must(t, "exec", "saved", "sh", "-c", "echo one > /marker; sync")

	if out := e.tentOK(t, "checkpoint", "create", "saved", "first"); out != "first\n" {
		t.Errorf("checkpoint create: %q", out)
	}
	if st := e.must(t, "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "saved"); st != "exited 0\n" {
		t.Errorf("the container after its checkpoint: %q, want exited 0", st)
	}
	if ls := e.tentOK(t, "checkpoint", "ls", "saved"); ls != "CHECKPOINT NAME\nfirst\n" {
		t.Errorf("checkpoint ls: %q", ls)
	}
	// The checkpoint holds the VM's state and its disk as it was then.
	for _, f := range []string{"vm.state", "disk.qcow2"} {
		if m, _ := filepath.Glob(filepath.Join(e.dir, "data", "containers", "*", "checkpoints", "first", f)); len(m) != 1 {
			t.Errorf("the checkpoint has no %s", f)
		}
	}
	id, n := lastLine()
	// The checkpoint is the engine's, on disk: a daemon killed meanwhile
	// finds it.
	e.kill9()
	e.start()
	e.tentOK(t, "start", "--checkpoint", "first", "saved")
	waitFor(t, "the restored program to count on", func() bool { _, m := lastLine(); return m > n+2 })
	id2, n2 := lastLine()
	if id2 != id || n2 <= n {
		t.Errorf("after the restore: %s %d, before it %s %d: not the same program going on", id2, n2, id, n)
	}
	for _, line := range strings.Split(strings.TrimSpace(e.out("logs", "saved")), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] != id {
			t.Errorf("a line of another run of the program: %q", line)
		}
	}
	if got := e.must(t, "inspect", "-f", "{{.NetworkSettings.IPAddress}}", "saved"); got != ip {
		t.Errorf("the restored VM's address %q, it had %q", got, ip)
	}
	if out := e.must(t, "run", "--rm", "busybox", "ping", "-c", "1", "-W", "5", strings.TrimSpace(ip)); !strings.Contains(out, "1 packets received") {
		t.Errorf("ping of the restored VM: %q", out)
	}
	if out := e.must(t, "exec", "saved", "cat", "/proc/1/comm"); out != "sh\n" {
		t.Errorf("exec in the restored VM: %q", out)
	}
	e.must(t, "exec", "saved", "sh", "-c", "echo two > /marker; sync")

	// --leave-running: saved, and running on.
	e.tentOK(t, "checkpoint", "create", "--leave-running", "saved", "second")
	_, n = lastLine()
	waitFor(t, "the program to run on after --leave-running", func() bool { _, m := lastLine(); return m > n+2 })
	if st := e.must(t, "inspect", "-f", "{{.State.Status}}", "saved"); st != "running\n" {
		t.Errorf("after checkpoint --leave-running: %q", st)
	}

	// Refusals, with their reasons.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"checkpoint", "create", "saved", "second"}, "checkpoint with name second already exists"},
		{[]string{"checkpoint", "create", "saved", "bad/name"}, "invalid checkpoint ID"},
		{[]string{"start", "--checkpoint", "nosuch", "saved"}, ""}, // running: nothing to start
	} {
		if _, errOut, code := e.tent(nil, c.args...); c.want != "" && (code == 0 || !strings.Contains(errOut, c.want)) {
			t.Errorf("tent %v: exit %d %q, want %q", c.args, code, errOut, c.want)
		}
	}
	e.must(t, "run", "-d", "--name", "proc", "busybox", "sleep", "600")
	t.Cleanup(func() { e.run("rm", "-f", "proc") })
	if _, errOut, code := e.tent(nil, "checkpoint", "create", "proc", "snap"); code == 0 || !strings.Contains(errOut, "needs CRIU") {
		t.Errorf("checkpoint of a process container: exit %d %q", code, errOut)
	}
	e.must(t, "stop", "-t", "0", "saved")
	if _, errOut, code := e.tent(nil, "start", "--checkpoint", "nosuch", "saved"); code == 0 || !strings.Contains(errOut, "checkpoint nosuch does not exist") {
		t.Errorf("start from a missing checkpoint: exit %d %q", code, errOut)
	}
	// A checkpoint restores again, with its disk as it was then (the
	// guest's memory and its disk go together).
	e.tentOK(t, "start", "--checkpoint", "first", "saved")
	// (Read from the disk, not the guest's page cache, which has "one"
	// whatever the disk holds.)
	if out := e.must(t, "exec", "saved", "sh", "-c", "echo 3 > /proc/sys/vm/drop_caches; cat /marker"); out != "one\n" {
		t.Errorf("the disk of a checkpoint restored a second time: /marker %q, want the checkpoint's", out)
	}
	e.must(t, "stop", "-t", "0", "saved")
	// A checkpoint whose state is cut short: QEMU's own words, not what
	// failed after it (the network namespace of a QEMU that is gone).
	cps, _ := filepath.Glob(filepath.Join(e.dir, "data", "containers", "*", "checkpoints", "first"))
	if len(cps) != 1 {
		t.Fatalf("checkpoint first: %v", cps)
	}
	broken := filepath.Join(filepath.Dir(cps[0]), "broken")
	if out, err := exec.Command("cp", "-a", cps[0], broken).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if fi, err := os.Stat(filepath.Join(broken, "vm.state")); err != nil || os.Truncate(filepath.Join(broken, "vm.state"), fi.Size()/2) != nil {
		t.Fatal(err)
	}
	if _, errOut, code := e.tent(nil, "start", "--checkpoint", "broken", "saved"); code == 0 || !strings.Contains(errOut, "the VM ended before it started") || !strings.Contains(errOut, "qemu-system-x86_64") {
		t.Errorf("start from a checkpoint cut short: exit %d %q", code, errOut)
	}
	e.tentOK(t, "checkpoint", "rm", "saved", "broken")
	// QEMU does not save a guest with a 9p share mounted (a volume).
	e.must(t, "run", "-d", "--name", "withvol", "--isolation", "vm", "--network", "none", "-v", "cpvol:/data", "busybox", "sleep", "600")
	t.Cleanup(func() { e.run("rm", "-f", "-v", "withvol"); e.run("volume", "rm", "cpvol") })
	if _, errOut, code := e.tent(nil, "checkpoint", "create", "withvol", "snap"); code == 0 || !strings.Contains(errOut, "VirtFS") {
		t.Errorf("checkpoint of a VM with a volume: exit %d %q", code, errOut)
	}
	if st := e.must(t, "inspect", "-f", "{{.State.Status}}", "withvol"); st != "running\n" {
		t.Errorf("a VM whose checkpoint failed: %q, want it running on", st)
	}

	e.tentOK(t, "checkpoint", "rm", "saved", "first")
	if ls := e.tentOK(t, "checkpoint", "ls", "saved"); ls != "CHECKPOINT NAME\nsecond\n" {
		t.Errorf("checkpoint ls after rm: %q", ls)
	}

	// The docker CLI offers its checkpoint verbs to an engine that says
	// experimental features are on (tentd --experimental, as dockerd's).
	if _, errOut, code := e.runIn(nil, "checkpoint", "ls", "saved"); code == 0 || !strings.Contains(errOut, "experimental") {
		t.Errorf("docker checkpoint without --experimental: exit %d %q", code, errOut)
	}
	e.stop()
	e.flags = []string{"--experimental"}
	e.start()
	lines := func() int { return strings.Count(e.out("logs", "saved"), "\n") }
	before := lines()
	e.must(t, "start", "--checkpoint", "second", "saved")
	waitFor(t, "the program restored by the docker CLI to count on", func() bool { return lines() > before+2 })
	if got, _ := lastLine(); got != id {
		t.Errorf("restored by the docker CLI: %s counts, want %s", got, id)
	}
	if out := e.must(t, "checkpoint", "create", "saved", "third"); out != "third\n" {
		t.Errorf("docker checkpoint create: %q", out)
	}
	if ls := e.must(t, "checkpoint", "ls", "saved"); ls != "CHECKPOINT NAME\nsecond\nthird\n" {
		t.Errorf("docker checkpoint ls: %q", ls)
	}
	e.must(t, "checkpoint", "rm", "saved", "third")
}
