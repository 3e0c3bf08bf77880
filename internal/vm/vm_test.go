package vm

import (
	"bufio"
	"encoding/json"
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

// TestBoot boots a VM whose disk holds busybox and runs a shell in it:
// its output and exit status come back over the agent's port.
func TestBoot(t *testing.T) {
	h := testHost(t)
	root := t.TempDir()
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Skip("no busybox")
	}
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	b, _ := os.ReadFile(bb)
	os.WriteFile(filepath.Join(root, "bin", "busybox"), b, 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin", "sh"))
	base, err := h.BaseDisk("test", root)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk.qcow2")
	if err := h.Overlay(base, disk); err != nil {
		t.Fatal(err)
	}
	m := Machine{Disk: disk, Agent: filepath.Join(dir, "agent.sock"), Console: filepath.Join(dir, "console.log"), MemMiB: 128}
	cmd, err := h.Command(m)
	if err != nil {
		t.Fatal(err)
	}
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
		if conn, err = net.Dial("unix", m.Agent); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	w, r := wire.NewWriter(conn), bufio.NewReader(conn)
	cfg, _ := json.Marshal(wire.Process{Args: []string{"sh", "-c", "echo hello $(cat /etc/hostname) $(hostname); echo oops >&2; exit 3"},
		Env: []string{"PATH=/bin"}, Hostname: "vm1", Files: map[string][]byte{"/etc/hostname": []byte("vm1\n")}})
	w.Write(wire.Config, cfg)
	start := time.Now()
	if f, err := wire.Read(r); err != nil || f.Kind != wire.Ready {
		t.Fatalf("ready: %c %s %v", f.Kind, f.P, err)
	}
	accel, note := h.Accel()
	t.Logf("booted in %v (%s; %s)", time.Since(start), accel, note)
	if accel != "kvm" && (accel != "tcg" || note == "") {
		t.Errorf("accelerator %q (%q): KVM, or TCG with the reason", accel, note)
	}
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
			if e.Code != 3 || stdout.String() != "hello vm1 vm1\n" || stderr.String() != "oops\n" {
				t.Errorf("exit %d, stdout %q, stderr %q", e.Code, stdout.String(), stderr.String())
			}
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				t.Error("the VM did not power off after its workload")
			}
			return
		}
	}
}
