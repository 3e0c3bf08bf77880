package main

import (
	"context"
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

	"github.com/tent-project/tent/internal/cgroups"
	"github.com/tent-project/tent/internal/network"
	"github.com/vishvananda/netlink"
)

// An engine is a daemon started for the run (tent's, or dockerd with the
// containerd it starts), driven through the docker CLI.
type engine struct {
	name         string
	cli          string // the engine's own client: tent's CLI, or docker's
	host         string
	dir          string
	cgroupParent string
	// bridge is a tent daemon's default bridge, its own (removed with its
	// table at the end: a daemon leaves them up by design).
	bridge string
	cmd    *exec.Cmd
	// hung: a removal had no answer; the run's end kills the rest.
	hung bool
}

func startEngine(name, cli, bin string, args ...string) *engine {
	dir, err := os.MkdirTemp("/tmp", "bench-"+name+"-")
	if err != nil {
		fail(err)
	}
	e := &engine{name: name, cli: cli, dir: dir, host: "unix://" + filepath.Join(dir, "sock"), cgroupParent: "/" + name + "-bench"}
	args = append(args, "--cgroup-parent", e.cgroupParent, "--data-root", filepath.Join(dir, "data"),
		"--exec-root", filepath.Join(dir, "exec"), "-H", e.host)
	if bin == "dockerd" { // beside a dockerd of the host: a pid file of its own
		args = append(args, "--pidfile", filepath.Join(dir, "docker.pid"))
	}
	if len(args) > 0 && args[0] == "daemon" { // tent: a bridge of its own, beside any tent0
		e.bridge = "tb-" + name
		if len(e.bridge) > 15 {
			e.bridge = e.bridge[:15]
		}
		args = append(args, "--bridge", e.bridge)
	}
	e.cmd = exec.Command(bin, args...)
	log, err := os.Create(filepath.Join(dir, "daemon.log"))
	if err != nil {
		fail(err)
	}
	e.cmd.Stdout, e.cmd.Stderr = log, log
	e.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := e.cmd.Start(); err != nil {
		fail(err)
	}
	atExit(e.stop)
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if exec.Command("docker", "-H", e.host, "version").Run() == nil {
			return e
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			fail(fmt.Errorf("%s did not start within 60s:\n%s", name, b))
		}
	}
}

// docker runs the docker CLI against the engine and returns its output;
// a failure ends the run.
func (e *engine) docker(args ...string) string {
	out, err := e.try(args...)
	if err != nil {
		fail(err)
	}
	return out
}

func (e *engine) try(args ...string) (string, error) { return e.run("docker", args...) }

// commandTimeout bounds one client command: dockerd 20.10 here has
// hung for good in a mass `rm -f` (session 12), and a run that waits
// forever reports nothing.
const commandTimeout = 10 * time.Minute

func (e *engine) run(client string, args ...string) (string, error) {
	return e.runFor(commandTimeout, client, args...)
}

// errHangs: a command had no answer in its time.
var errHangs = errors.New("the engine hangs")

func (e *engine) runFor(timeout time.Duration, client string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, client, append([]string{"-H", e.host}, args...)...).CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("no answer in %v: %w", timeout, errHangs)
	}
	if err != nil {
		return string(out), fmt.Errorf("%s: %s %s: %v: %s", e.name, filepath.Base(client), strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// timed runs one docker command and returns how long it took.
func (e *engine) timed(args ...string) time.Duration { return e.timedWith("docker", args...) }

// timedWith is timed with another client (the engine's own: e.cli).
func (e *engine) timedWith(client string, args ...string) time.Duration {
	t0 := time.Now()
	if _, err := e.run(client, args...); err != nil {
		fail(err)
	}
	return time.Since(t0)
}

// removeAll removes every container of the engine (not timed). It
// reports false, and gives up, once the engine stops answering.
func (e *engine) removeAll() bool {
	if e.hung {
		return false
	}
	out, err := e.try("ps", "-aq")
	ids := strings.Fields(out)
	if err != nil {
		logf("%v", err)
		return false
	}
	// Twenty at a time: the docker CLI removes the IDs it is given all at
	// once, and dockerd 20.10 hung in a removal of a hundred (and, in
	// sessions 17 and 18, of twenty, after the scale figure's 1,022).
	for len(ids) > 0 {
		n := min(len(ids), 20)
		if _, err := e.runFor(removeTimeout, "docker", append([]string{"rm", "-f"}, ids[:n]...)...); err != nil {
			logf("%v", err) // not fail: this also runs in the clean-up at exit
			if errors.Is(err, errHangs) {
				e.hung = true // stop: the run's end kills what is left
				return false
			}
		}
		ids = ids[n:]
	}
	return true
}

// removeTimeout bounds the removal of twenty containers.
const removeTimeout = 3 * time.Minute

// daemonPids are the engine's long-lived processes: tent's daemon, or
// dockerd and the containerd it started.
func (e *engine) daemonPids() []int {
	out := []int{e.cmd.Process.Pid}
	if e.name == "docker" {
		for pid := range allPids() {
			if ppid(pid) == e.cmd.Process.Pid && strings.HasPrefix(comm(pid), "containerd") {
				out = append(out, pid)
			}
		}
	}
	return out
}

func (e *engine) stop() {
	// Containers outlive their daemon (tent's by design), and networks'
	// bridges too: an interrupted run removes what the figure in progress
	// made first.
	if e.removeAll() {
		e.try("network", "prune", "-f")
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { e.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
	if e.hung {
		e.killLeftovers()
	}
	exec.Command("umount", "-R", e.dir).Run()
	os.RemoveAll(e.dir)
	if cg, err := cgroups.New(e.cgroupParent); err == nil {
		if err := cg.Destroy(); err != nil {
			logf("cgroup %s left: %v", e.cgroupParent, err)
		}
	}
	// dockerd also makes it in a hybrid host's unified hierarchy.
	os.Remove(filepath.Join("/sys/fs/cgroup/unified", e.cgroupParent))
	if e.bridge != "" {
		if l, err := netlink.LinkByName(e.bridge); err == nil {
			netlink.LinkDel(l)
		}
		network.DeleteTable(network.TableFor(e.bridge))
	}
}

// parallel runs f(0..n-1) on `workers` goroutines.
func parallel(n, workers int, f func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				f(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
}

// A registry is Debian's docker-registry on a loopback port, restarted
// with empty storage before every push so that no layer "already exists".
type registry struct {
	addr, dir string
	cmd       *exec.Cmd
}

func startRegistry() *registry {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fail(err)
	}
	r := &registry{addr: l.Addr().String()}
	l.Close()
	if r.dir, err = os.MkdirTemp("", "bench-registry-"); err != nil {
		fail(err)
	}
	atExit(func() { r.stop(); os.RemoveAll(r.dir) })
	r.reset()
	return r
}

func (r *registry) reset() {
	r.stop()
	data := filepath.Join(r.dir, "data")
	if err := os.RemoveAll(data); err != nil {
		fail(err)
	}
	conf := filepath.Join(r.dir, "config.yml")
	yml := fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n", data, r.addr)
	if err := os.WriteFile(conf, []byte(yml), 0o600); err != nil {
		fail(err)
	}
	r.cmd = exec.Command("docker-registry", "serve", conf)
	log, _ := os.Create(filepath.Join(r.dir, "registry.log"))
	r.cmd.Stdout, r.cmd.Stderr = log, log
	if err := r.cmd.Start(); err != nil {
		fail(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if c, err := net.Dial("tcp", r.addr); err == nil {
			c.Close()
			return
		}
	}
	fail(fmt.Errorf("docker-registry did not listen on %s within 10s", r.addr))
}

func (r *registry) stop() {
	if r.cmd != nil {
		r.cmd.Process.Kill()
		r.cmd.Wait()
		r.cmd = nil
	}
}

// killLeftovers ends what a hung engine left running: the containers'
// processes (in its cgroup parent) and, for dockerd, the containerd
// shims, which outlive their daemon (known by the engine's own
// directory in their command line).
func (e *engine) killLeftovers() {
	for pid := range allPids() {
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if e.contains(pid) || strings.Contains(string(cmdline), e.dir+"/") {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if !e.anyLeft() {
			return
		}
	}
	logf("%s: processes left in %s", e.name, e.cgroupParent)
}

// anyLeft reports whether a process is still in the engine's cgroup parent.
func (e *engine) anyLeft() bool {
	for pid := range allPids() {
		if e.contains(pid) {
			return true
		}
	}
	return false
}

// contains reports whether process pid is in the engine's cgroup parent.
func (e *engine) contains(pid int) bool {
	cg, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	return strings.Contains(string(cg), ":"+e.cgroupParent+"/")
}
