package vm

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tent-project/tent/internal/testutil"
	"github.com/tent-project/tent/internal/vm/wire"
)

// testHost finds the guest kernel (TENT_VM_GUEST or the default place)
// and builds the agent; it skips where the host has no QEMU or kernel.
func testHost(t *testing.T) *Host {
	t.Helper()
	if os.Getuid() != 0 {
		t.Skip("needs root (mkfs -d keeps owners)")
	}
	guest := os.Getenv("TENT_VM_GUEST")
	if guest == "" {
		guest = DefaultGuestDir
	}
	dir := t.TempDir()
	h, err := NewHost(guest, testutil.BuildAgent(t, dir), filepath.Join(dir, "state"))
	if err != nil {
		t.Skip(err)
	}
	return h
}

// busyboxDisk is a container disk over a base disk that holds busybox.
func busyboxDisk(t *testing.T, h *Host) string {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox")
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	b, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin", "sh"))
	base, err := h.BaseDisk("test", root)
	if err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(t.TempDir(), "disk.qcow2")
	if err := h.Overlay(base, disk); err != nil {
		t.Fatal(err)
	}
	return disk
}

// vmRun is a finished run of a VM's workload.
type vmRun struct {
	code           int
	stdout, stderr string
	ready          time.Duration // from the configuration to the agent's ready
}

// runVM runs m (in dir, QEMU's directory: m's sockets are names there)
// with the workload p and returns what it did; started, if set, runs once
// QEMU has started (a template's state to load).
func runVM(t *testing.T, h *Host, dir string, m Machine, p wire.Process, started func()) vmRun {
	t.Helper()
	cmd, err := h.Command(m)
	if err != nil {
		t.Fatal(err)
	}
	cmd.Dir = dir
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	defer func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			con, _ := os.ReadFile(m.Console)
			t.Logf("console:\n%s", con)
		}
	}()
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if conn, err = DialIn(dir, m.Agent); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	defer conn.Close()
	if started != nil {
		started()
	}
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	w, r := wire.NewWriter(conn), bufio.NewReader(conn)
	p.Seed = []byte(dir)
	if m.Template != "" {
		p.Time = time.Now().UnixNano() // as the monitor does
	}
	cfg, _ := json.Marshal(p)
	w.Write(wire.Config, cfg)
	start := time.Now()
	if f, err := wire.Read(r); err != nil || f.Kind != wire.Ready {
		t.Fatalf("ready: %c %s %v", f.Kind, f.P, err)
	}
	run := vmRun{ready: time.Since(start)}
	w.Write(wire.Start, nil)
	var stdout, stderr strings.Builder
	for {
		f, err := wire.Read(r)
		if err != nil {
			t.Fatal(err)
		}
		switch f.Kind {
		case wire.Stdout:
			stdout.Write(f.P)
		case wire.Stderr:
			stderr.Write(f.P)
		case wire.Exit:
			var e wire.ExitStatus
			json.Unmarshal(f.P, &e)
			run.code, run.stdout, run.stderr = e.Code, stdout.String(), stderr.String()
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Error("the VM did not power off after its workload")
			}
			return run
		}
	}
}

// TestBoot boots a VM whose disk holds busybox and runs a shell in it:
// its output and exit status come back over the agent's port.
func TestBoot(t *testing.T) {
	h := testHost(t)
	dir := t.TempDir()
	m := Machine{Disk: busyboxDisk(t, h), Agent: "agent.sock", Console: filepath.Join(dir, "console.log"), MemMiB: 128}
	run := runVM(t, h, dir, m, wire.Process{Args: []string{"sh", "-c", "echo hello $(cat /etc/hostname) $(hostname); echo oops >&2; exit 3"},
		Env: []string{"PATH=/bin"}, Hostname: "vm1", Files: map[string][]byte{"/etc/hostname": []byte("vm1\n")}}, nil)
	accel, note := h.Accel()
	t.Logf("booted in %v (%s; %s)", run.ready, accel, note)
	if accel != "kvm" && (accel != "tcg" || note == "") {
		t.Errorf("accelerator %q (%q): KVM, or TCG with the reason", accel, note)
	}
	if run.code != 3 || run.stdout != "hello vm1 vm1\n" || run.stderr != "oops\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", run.code, run.stdout, run.stderr)
	}
}

// TestTemplate makes a template and starts two VMs from it, each with a
// disk of its own: each runs its workload on its disk, with the host's
// clock and a random number generator of its own, without a boot.
func TestTemplate(t *testing.T) {
	h := testHost(t)
	tpl, err := h.Template(128, 1)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := h.Template(128, 1); err != nil || again != tpl {
		t.Fatalf("the template again: %s %v (was %s)", again, err, tpl)
	}
	script := `echo $(cat /etc/hostname) $(date +%s); od -An -tx1 -N16 /dev/urandom | tr -d ' \n'; echo; ls /proc/self/fd >/dev/null; exit 7`
	time.Sleep(1500 * time.Millisecond) // the template's clock stays behind by as much
	var randoms []string
	for _, name := range []string{"one", "two"} {
		before := time.Now().Unix()
		dir := t.TempDir()
		m := Machine{Disk: busyboxDisk(t, h), Agent: "agent.sock", QMP: "qmp.sock", Console: filepath.Join(dir, "console.log"), MemMiB: 128, Template: tpl}
		run := runVM(t, h, dir, m, wire.Process{Args: []string{"sh", "-c", script}, Env: []string{"PATH=/bin"},
			Files: map[string][]byte{"/etc/hostname": []byte(name + "\n")}}, func() {
			// QEMU opens its sockets one after the other: its QMP one may
			// not listen yet when the agent's does (as the monitor, wait
			// for the machine protocol to answer first).
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				q, err := DialQMP(dir, m.QMP)
				if err == nil {
					q.Close()
					break
				}
				if time.Now().After(deadline) {
					t.Fatal(err)
				}
			}
			if err := StartFromTemplate(dir, m.QMP, tpl, time.Minute); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%s: ready %v after its configuration", name, run.ready)
		lines := strings.Split(run.stdout, "\n")
		var host string
		var clock int64
		if len(lines) < 2 || run.code != 7 || run.stderr != "" {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", name, run.code, run.stdout, run.stderr)
		}
		fmt.Sscan(lines[0], &host, &clock)
		if host != name || clock < before || clock > time.Now().Unix()+1 {
			t.Errorf("%s: hostname %q, clock %d (host's %d)", name, host, clock, time.Now().Unix())
		}
		randoms = append(randoms, lines[1])
	}
	if randoms[0] == randoms[1] || len(randoms[0]) != 32 {
		t.Errorf("the two VMs' random bytes: %q and %q", randoms[0], randoms[1])
	}
}
