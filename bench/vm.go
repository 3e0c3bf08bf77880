package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tent-project/tent/internal/task/vmtask"
	"github.com/tent-project/tent/internal/vm"
)

// vmFigures: what the VM isolation mode costs (docs/vm.md): `run --rm`
// of a VM against a container's under docker (the same image and
// command; this host runs VMs under TCG), and the host memory per idle
// VM of ten of one image, with KSM merging and before it starts.
func (s *suite) vmFigures() {
	if _, err := vm.NewHost(vm.DefaultGuestDir, filepath.Join(s.binDir, "tent-agent"), s.work); err != nil {
		logf("vm: skipped: %v", err)
		return
	}
	run := &figure{name: "`run --rm` of a VM (`--isolation vm`, TCG) and of a docker container", label: "run --rm VM", unit: "ms", ref: "docker"}
	run.tent, run.other = interleave(s.heavyRuns, 1,
		func() float64 {
			return ms(s.tent.timed("run", "--rm", "--isolation", "vm", "--network", "none", "busybox:bench", "true"))
		},
		func() float64 { return ms(s.docker.timed("run", "--rm", "--network", "none", "busybox:bench", "true")) })
	s.add(run)
	s.vmFloor()
	s.vmSaveRestore()

	// The measure: ten identical idle VMs (a full run's count),
	// each one's share of the host's memory (the PSS of every process its
	// start added: its QEMU and its monitor, and what the daemon grew
	// by), before KSM and with KSM merging their guests' pages.
	n := s.vms
	restore := ksmSettings()
	defer restore()
	writeKSM("run", "2") // unmerge what any earlier run merged
	writeKSM("run", "0")
	pids, daemonBefore := allPids(), daemonPSS(s.tent)
	for i := 0; i < n; i++ {
		s.tent.docker("run", "-d", "--isolation", "vm", "--network", "none", "busybox:bench", "sleep", "100000")
	}
	var added []int
	for pid := range allPids() {
		if !pids[pid] {
			added = append(added, pid)
		}
	}
	perVM := func() float64 {
		kb := daemonPSS(s.tent) - daemonBefore
		for _, pid := range added {
			kb += pssKB(pid)
		}
		return kb / 1024 / float64(n)
	}
	time.Sleep(3 * time.Second) // booted, idle
	before := perVM()
	writeKSM("pages_to_scan", "20000")
	writeKSM("sleep_millisecs", "10")
	writeKSM("run", "1")
	var after float64
	for deadline, last := time.Now().Add(90*time.Second), -1.0; time.Now().Before(deadline); time.Sleep(3 * time.Second) {
		after = perVM()
		if last > 0 && last-after < 0.2 { // settled
			break
		}
		last = after
	}
	ksm := &figure{name: fmt.Sprintf("host memory per idle VM (PSS of its QEMU and monitor, %d VMs of one image, KSM merging their guests' pages)", n),
		label: "memory/VM, KSM", unit: "MiB", ref: "the same VMs before KSM", tent: []float64{after}, other: []float64{before}, goal: below(64, "MiB")}
	s.add(ksm)
	logf("vm: KSM shares %s pages", readKSM("pages_sharing"))
	s.tent.removeAll()
}

// vmFloor: `run --rm` of a VM (tent's own CLI, so no client start-up
// is counted beyond tent's) against its floor, QEMU booting the same
// machine and kernel into a busybox initramfs that powers off at once:
// what the engine, the monitor, the disk and the agent add to a boot.
func (s *suite) vmFloor() {
	h, err := vm.NewHost(vm.DefaultGuestDir, filepath.Join(s.binDir, "tent-agent"), s.work)
	if err != nil {
		logf("vm floor: %v", err)
		return
	}
	bootFloor := func() float64 {
		cmd, err := h.FloorCommand("/bin/busybox", vmtask.DefaultMemory>>20)
		if err != nil {
			fail(err)
		}
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			fail(fmt.Errorf("the floor's QEMU: %v: %s", err, out))
		}
		return ms(time.Since(t0))
	}
	runVM := func(args ...string) func() float64 {
		return func() float64 {
			return ms(s.tent.timedWith(s.tent.cli, append([]string{"run", "--rm", "--isolation", "vm", "--network", "none"}, append(args, "busybox:bench", "true")...)...))
		}
	}
	floor := &figure{name: "`run --rm` of a VM (tent's CLI) against QEMU booting the same kernel into an initramfs that powers off (the floor)",
		label: "VM run against its floor", unit: "ms", ref: "the floor", goal: atMostRatio(1.2)}
	// The floor varies by ±25% from run to run here: nine samples a side.
	floor.tent, floor.other = interleave(s.heavyRuns*3, 1, runVM(), bootFloor)
	s.add(floor)
	// A VM with a volume boots (no template: docs/vm.md, "Templates"):
	// the boot path against the same floor.
	boot := &figure{name: "`run --rm` of a VM that boots (with a volume, so no template; tent's CLI) against the floor",
		label: "VM boot against its floor", unit: "ms", ref: "the floor"}
	boot.tent, boot.other = interleave(s.heavyRuns*3, 1, runVM("-v", "bench-vm-vol:/vol"), bootFloor)
	s.add(boot)
	s.tent.try("volume", "rm", "bench-vm-vol")
}

// vmSaveRestore: an idle VM saved (`checkpoint create`: its whole state
// to disk, the VM ended) against ending it unsaved (`stop -t 0`), and
// started again from the checkpoint against a fresh start of the same
// stopped container.
func (s *suite) vmSaveRestore() {
	id := strings.TrimSpace(s.tent.docker("run", "-d", "--isolation", "vm", "--network", "none", "busybox:bench", "sleep", "100000"))
	save := &figure{name: "`checkpoint create` of an idle VM (its state saved, the VM ended), against `stop -t 0`", label: "VM save", unit: "ms", ref: "stop -t 0"}
	restore := &figure{name: "`start --checkpoint` of that VM (going on from its state), against starting it afresh (`start`: from its template)", label: "VM restore", unit: "ms", ref: "a fresh start"}
	for i := 0; i < s.heavyRuns; i++ {
		cp := fmt.Sprintf("bench%d", i)
		save.tent = append(save.tent, ms(s.tent.timedWith(s.tent.cli, "checkpoint", "create", id, cp)))
		restore.tent = append(restore.tent, ms(s.tent.timedWith(s.tent.cli, "start", "--checkpoint", cp, id)))
		save.other = append(save.other, ms(s.tent.timed("stop", "-t", "0", id)))
		restore.other = append(restore.other, ms(s.tent.timed("start", id)))
	}
	s.add(save)
	s.add(restore)
	s.tent.removeAll()
}

const ksmDir = "/sys/kernel/mm/ksm"

func readKSM(name string) string {
	b, _ := os.ReadFile(filepath.Join(ksmDir, name))
	return strings.TrimSpace(string(b))
}

func writeKSM(name, value string) {
	if err := os.WriteFile(filepath.Join(ksmDir, name), []byte(value), 0o644); err != nil {
		logf("ksm %s: %v", name, err)
	}
}

// ksmSettings returns what puts the host's KSM settings back.
func ksmSettings() func() {
	saved := map[string]string{}
	for _, k := range []string{"run", "pages_to_scan", "sleep_millisecs"} {
		saved[k] = readKSM(k)
	}
	return func() {
		for _, k := range []string{"pages_to_scan", "sleep_millisecs", "run"} {
			writeKSM(k, saved[k])
		}
	}
}
