package vm

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tent-project/tent/internal/vm/wire"
)

// Templates (docs/vm.md "Templates"): a VM whose guest has booted and
// whose agent waits for its configuration, saved once per machine size:
// its memory as a file (templateMemory) and the rest of its state
// (templateState, QEMU's migration stream without the memory). A VM
// started from it maps the file copy-on-write as its memory and loads
// the state: it goes on from the agent's wait, without a boot, and every
// page it does not write stays the page cache's, shared by all the VMs
// of that template. What differs between them is not in the template:
// the guest has not probed its disk or NIC (their drivers load with the
// configuration), and the agent sets the clock and reseeds the random
// number generator from the host's configuration.
const (
	templateMemory = "memory"
	templateState  = "state"
	templatesDir   = "templates"
	// templateTimeout bounds a template's boot and save.
	templateTimeout = 2 * time.Minute
)

// templates is a host's templates being made, and those that failed.
type templates struct {
	mu     sync.Mutex
	making map[string]*sync.Mutex
	failed map[string]error
}

// Template is the directory of the template for VMs of memMiB and cpus,
// made first if there is none (one boot of the guest, saved as it
// waits). A template that cannot be made is not tried again by this
// host: its error is returned each time.
func (h *Host) Template(memMiB, cpus int) (string, error) {
	if h.NoTemplates {
		return "", errors.New("VM templates are off (tentd --vm-templates=false)")
	}
	initrd, err := h.Initrd()
	if err != nil {
		return "", err
	}
	key, err := h.templateKey(memMiB, cpus, initrd)
	if err != nil {
		return "", err
	}
	dir := filepath.Join(h.State, templatesDir, key)
	if templateReady(dir) {
		return dir, nil
	}
	t := &h.tpl
	t.mu.Lock()
	if err := t.failed[key]; err != nil {
		t.mu.Unlock()
		return "", err
	}
	if t.making == nil {
		t.making, t.failed = map[string]*sync.Mutex{}, map[string]error{}
	}
	m := t.making[key]
	if m == nil {
		m = &sync.Mutex{}
		t.making[key] = m
	}
	t.mu.Unlock()
	m.Lock()
	defer m.Unlock()
	if templateReady(dir) { // made while this one waited
		return dir, nil
	}
	t.mu.Lock()
	err = t.failed[key] // or failed meanwhile
	t.mu.Unlock()
	if err != nil {
		return "", err
	}
	if err := h.makeTemplate(dir, memMiB, cpus, initrd); err != nil {
		err = fmt.Errorf("the VM template of %d MiB and %d CPUs: %w", machineMem(memMiB), max(cpus, 1), err)
		if h.Log != nil {
			h.Log.Warn("VMs of this size will boot: no template", "err", err)
		}
		t.mu.Lock()
		t.failed[key] = err
		t.mu.Unlock()
		return "", err
	}
	return dir, nil
}

func templateReady(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, templateState))
	return err == nil
}

// templateKey names a template by what a VM started from it must share
// with it: QEMU, the guest kernel and initramfs (the agent and its
// modules), the accelerator and the machine's size (which starts the
// name: a new template of a size replaces the old one). The kernel's
// command line is not in it: a started VM never boots.
func (h *Host) templateKey(memMiB, cpus int, initrd string) (string, error) {
	sum := sha256.New()
	for _, f := range []string{h.Qemu, h.Kernel} {
		fi, err := os.Stat(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(sum, "%s %d %d\n", f, fi.Size(), fi.ModTime().UnixNano())
	}
	accel, _ := h.Accel()
	fmt.Fprintf(sum, "v2 %s %s %d %d\n", filepath.Base(initrd), accel, machineMem(memMiB), max(cpus, 1))
	return fmt.Sprintf("%dm-%dc-%s", machineMem(memMiB), max(cpus, 1), hex.EncodeToString(sum.Sum(nil))[:20]), nil
}

// makeTemplate boots the guest with its memory in a file of its own,
// tells the agent to hold, and saves the VM without its memory (QEMU's
// x-ignore-shared): the state is devices and vCPUs, the memory is the
// file. The directory appears whole or not at all.
func (h *Host) makeTemplate(dir string, memMiB, cpus int, initrd string) error {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(parent, filepath.Base(dir)+".tmp-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	// The disk is never read (the guest's driver loads with a VM's
	// configuration): any file serves.
	if err := os.WriteFile(filepath.Join(tmp, "disk.raw"), make([]byte, 4096), 0o600); err != nil {
		return err
	}
	args := append(h.machineArgs(memMiB, cpus, initrd),
		"-object", fmt.Sprintf("memory-backend-file,id=ram,size=%dM,mem-path=%s,share=on", machineMem(memMiB), templateMemory),
		"-serial", "file:console.log", "-qmp", "unix:qmp.sock,server=on,wait=off")
	args = append(args, devices("file=disk.raw,format=raw", "agent.sock", false)...)
	cmd := exec.Command(h.Qemu, args...)
	cmd.Dir = tmp
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var qemuErr strings.Builder
	cmd.Stderr = &qemuErr
	exited, stop, err := startQEMU(cmd)
	if err != nil {
		return err
	}
	defer stop()
	fail := func(err error) error {
		if s := strings.TrimSpace(qemuErr.String()); s != "" {
			err = fmt.Errorf("%w: %s", err, s)
		}
		if con, _ := os.ReadFile(filepath.Join(tmp, "console.log")); len(con) > 0 {
			err = fmt.Errorf("%w; the guest's console:\n%s", err, Tail(con, 2000))
		}
		return err
	}
	deadline := time.Now().Add(templateTimeout)
	conn, err := awaitAgent(tmp, "agent.sock", exited, deadline, wire.Hold, nil)
	if err != nil {
		return fail(err)
	}
	defer conn.Close()
	q, err := DialQMP(tmp, "qmp.sock")
	if err != nil {
		return fail(err)
	}
	defer q.Close()
	if err := ignoreShared(q, true); err != nil {
		return fail(err)
	}
	if err := q.Call("migrate", map[string]any{"uri": "exec:cat > " + templateState + ".tmp"}, nil); err != nil {
		return fail(err)
	}
	if err := q.Migrated(time.Until(deadline)); err != nil {
		return fail(err)
	}
	// QEMU reports the migration done once its last byte is in the pipe:
	// cat has written it all when it has ended, which the quit waits for.
	q.Call("quit", nil, nil)
	select {
	case <-exited:
		exited <- nil
	case <-time.After(time.Until(deadline)):
		return fail(errors.New("QEMU did not quit"))
	}
	if err := os.Rename(filepath.Join(tmp, templateState+".tmp"), filepath.Join(tmp, templateState)); err != nil {
		return err
	}
	for _, f := range []string{"disk.raw", "agent.sock", "qmp.sock"} {
		os.Remove(filepath.Join(tmp, f))
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	// Older templates of the size (another kernel, agent or QEMU) go: a
	// VM started from one keeps its memory file open.
	name := filepath.Base(dir)
	old, _ := filepath.Glob(filepath.Join(parent, name[:strings.LastIndex(name, "-")+1]+"*"))
	for _, o := range old {
		if o != dir && !strings.Contains(filepath.Base(o), ".tmp-") {
			os.RemoveAll(o)
		}
	}
	return nil
}

// removeTemplateLeftovers removes what interrupted makings of templates
// left.
func removeTemplateLeftovers(state string) {
	left, _ := filepath.Glob(filepath.Join(state, templatesDir, "*.tmp-*"))
	for _, d := range left {
		os.RemoveAll(d)
	}
}

// ignoreShared leaves the memory out of a migration (saving a template)
// or takes it as it is mapped (starting from one): QEMU's x-ignore-shared,
// set on or off.
func ignoreShared(q *QMP, on bool) error {
	return q.Call("migrate-set-capabilities", map[string]any{"capabilities": []map[string]any{{"capability": "x-ignore-shared", "state": on}}}, nil)
}

// StartFromTemplate loads the template's state into the VM whose QMP
// socket is name in dir, started by a Machine with Template (QEMU waits
// with -incoming defer), and waits until it runs.
func StartFromTemplate(dir, name, template string, timeout time.Duration) error {
	q, err := DialQMP(dir, name)
	if err != nil {
		return err
	}
	defer q.Close()
	if err := ignoreShared(q, true); err != nil {
		return err
	}
	state := filepath.Join(template, templateState)
	if err := q.Call("migrate-incoming", map[string]any{"uri": "exec:cat " + ShellQuote(state)}, nil); err != nil {
		return err
	}
	err = q.Await("query-status", timeout, func(r json.RawMessage) (bool, error) {
		var st struct {
			Status string `json:"status"`
		}
		json.Unmarshal(r, &st)
		switch st.Status {
		case "inmigrate", "prelaunch":
			return false, nil
		case "running":
			return true, nil
		}
		return true, errors.New("starting the VM from its template: QEMU is " + st.Status)
	})
	if err != nil {
		return err
	}
	// The VM's own saves (checkpoints) hold its memory, as a booted VM's.
	return ignoreShared(q, false)
}

// ShellQuote quotes s for sh (QEMU runs an exec: migration through it).
func ShellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// startQEMU starts cmd; exited gets its end (put back by whoever takes
// it), stop kills it and waits for that.
func startQEMU(cmd *exec.Cmd) (exited chan error, stop func(), err error) {
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return exited, func() {
		cmd.Process.Kill()
		exited <- <-exited
	}, nil
}

// awaitAgent connects to the agent's port (the unix socket name in dir,
// which QEMU makes), sends it a frame of kind and waits for its Ready.
func awaitAgent(dir, name string, exited chan error, deadline time.Time, kind byte, payload []byte) (net.Conn, error) {
	for {
		conn, err := DialIn(dir, name)
		if err == nil {
			conn.SetDeadline(deadline)
			if err := wire.NewWriter(conn).Write(kind, payload); err != nil {
				conn.Close()
				return nil, err
			}
			f, err := wire.Read(bufio.NewReader(conn))
			if err != nil || f.Kind != wire.Ready {
				conn.Close()
				return nil, fmt.Errorf("no answer from the agent (%c): %v", f.Kind, err)
			}
			conn.SetDeadline(time.Time{})
			return conn, nil
		}
		select {
		case err := <-exited:
			exited <- err
			return nil, fmt.Errorf("QEMU ended: %v", err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, errors.New("the agent's port did not open in time")
		}
	}
}

// Tail is the end of b, at most n bytes.
func Tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
