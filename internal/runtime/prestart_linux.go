package runtime

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"syscall"

	"github.com/tent-project/tent/internal/cgroups"
	"golang.org/x/sys/unix"
)

// A Prestarted is a container init started before its container is
// known: its PID, network, IPC and UTS namespaces exist and its Go
// runtime is up, and it waits on its sync socket for a configuration.
// Create takes one through CreateOpts and hands it the container's
// files and config, which takes the init's start-up (a process start
// with new namespaces, ~8 ms here) off the way to a running container.
// The engine's spare monitors keep one each (docs/engine.md).
//
// Nothing of the container is in it before Create: the mount namespace,
// the cgroup, the root, credentials, capabilities and seccomp all come
// after, exactly as for an init Create starts itself. A container whose
// namespaces differ (host networking, joined or user namespaces) gets a
// new init, and the prestarted one is ended.
type Prestarted struct {
	cmd  *exec.Cmd
	sync *os.File
	// cgroup is where the init waits (JoinCgroup; "": where its
	// starter was).
	cgroup string
}

// prestartFlags are the namespaces a prestarted init has: docker's
// default set, but for the mount namespace, which every init unshares
// itself once it has its config, so that it sees the container's root
// file system the engine mounted in the meantime.
const prestartFlags = unix.CLONE_NEWPID | unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS

// Prestart starts an init for a container to come.
func Prestart() (*Prestarted, error) {
	bin, err := sealedSelf()
	if err != nil {
		return nil, err
	}
	defer bin.Close()
	syncParent, syncChild, err := socketPair("sync")
	if err != nil {
		return nil, err
	}
	defer syncChild.Close()
	cmd := childCmd(modePrestarted, [3]*os.File{}, []*os.File{syncChild, bin})
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Cloneflags: prestartFlags}
	if err := cmd.Start(); err != nil {
		syncParent.Close()
		return nil, fmt.Errorf("prestart a container init: %w", err)
	}
	return &Prestarted{cmd: cmd, sync: syncParent}, nil
}

// Pid is the init's process ID.
func (p *Prestarted) Pid() int { return p.cmd.Process.Pid }

// Close ends an init that no container took.
func (p *Prestarted) Close() {
	p.sync.Close()
	_ = p.cmd.Process.Kill()
	_ = p.cmd.Wait()
	p.dropCgroup()
}

// SpareCgroupPrefix starts the name of a prestarted init's cgroup.
const SpareCgroupPrefix = "tent-spare-"

// JoinCgroup puts the init in a cgroup of its own under parent, which
// Create renames to the container's when it is a sibling (cgroup v1):
// the move into a cgroup, an RCU grace period of the kernel's (~7 ms
// here), is then paid before the container comes. Where cgroups cannot
// be renamed (v2) it does nothing.
func (p *Prestarted) JoinCgroup(parent string) error {
	if cgroups.Unified() {
		return nil
	}
	path := filepath.Join("/", parent, SpareCgroupPrefix+strconv.Itoa(p.Pid()))
	cg, err := cgroups.New(path)
	if err != nil {
		return err
	}
	p.cgroup = path // removed once the init left it or ended, even half-joined
	return cg.Apply(p.Pid())
}

// RemoveSpareCgroups removes the cgroups under parent that prestarted
// inits waited in and that are empty now (their spares ended with a
// daemon that was killed).
func RemoveSpareCgroups(parent string) {
	for _, name := range cgroups.Children(parent) {
		if strings.HasPrefix(name, SpareCgroupPrefix) {
			if spare, err := cgroups.New(filepath.Join(parent, name)); err == nil {
				spare.Destroy() // a live spare's is not empty, and stays
			}
		}
	}
}

// dropCgroup removes the init's own cgroup (once it left or ended).
func (p *Prestarted) dropCgroup() {
	if p.cgroup == "" {
		return
	}
	if cg, err := cgroups.New(p.cgroup); err == nil {
		cg.Destroy()
	}
	p.cgroup = ""
}

// takeCgroup makes the init's cgroup the container's, path, if it can
// (a sibling's name, cgroup v1); else the init is moved by Apply as any
// other, and dropCgroup removes its own cgroup after.
func (p *Prestarted) takeCgroup(path string) {
	if p.cgroup != "" && cgroups.Rename(p.cgroup, path) == nil {
		p.cgroup = ""
	}
}

// fits tells whether the init can serve a container started with these
// clone flags and namespaces to join.
func (p *Prestarted) fits(flags uintptr, join []nsJoin) bool {
	return flags == prestartFlags && len(join) == 0
}

// handOver gives the init the files an init started for the container
// would have inherited: stdio (nil: /dev/null), the exec fifo and, with
// a terminal, the console socket. They travel as one SCM_RIGHTS message
// ahead of the config.
func handOver(sync *os.File, stdio [3]*os.File, fifo, console *os.File) error {
	var fds []int
	for _, f := range stdio {
		if f == nil {
			null, err := os.Open(os.DevNull)
			if err != nil {
				return err
			}
			defer null.Close()
			f = null
		}
		fds = append(fds, int(f.Fd()))
	}
	fds = append(fds, int(fifo.Fd()))
	if console != nil {
		fds = append(fds, int(console.Fd()))
	}
	return unix.Sendmsg(int(sync.Fd()), []byte{byte(len(fds))}, unix.UnixRights(fds...), nil, 0)
}

// receiveFiles is handOver's other end, in the prestarted init: the files
// land where an init started for the container finds them (0, 1, 2,
// fifoFd, consoleFd).
func receiveFiles() error {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(5*4))
	_, oobn, _, _, err := unix.Recvmsg(syncFd, buf, oob, 0)
	if err != nil {
		return fmt.Errorf("receive the container's files: %w", err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return fmt.Errorf("receive the container's files: no descriptors")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil {
		return fmt.Errorf("receive the container's files: %w", err)
	}
	if len(fds) != int(buf[0]) || len(fds) < 4 {
		return fmt.Errorf("receive the container's files: %d descriptors", len(fds))
	}
	// Out of the way first: a received descriptor may hold the number
	// another one is to take.
	for i, fd := range fds {
		high, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 100)
		if err != nil {
			return err
		}
		unix.Close(fd)
		fds[i] = high
	}
	targets := []int{0, 1, 2, fifoFd, consoleFd}
	for i, fd := range fds {
		flags := unix.O_CLOEXEC
		if targets[i] <= 2 {
			flags = 0 // stdio stays open across exec
		}
		if err := unix.Dup3(fd, targets[i], flags); err != nil {
			return err
		}
		unix.Close(fd)
	}
	return nil
}

// WarmUp builds the JSON codecs of a container's configuration ahead of
// need. encoding/json works out each struct type's fields on first use:
// for a runtime spec, ~3 ms of CPU in every fresh process (profiled), paid
// on the way to a running container by the monitor (reading the spec,
// sending the init its config) and by the init (reading that). A spare
// monitor and a prestarted init have time before their container comes.
func WarmUp() {
	v := reflect.New(reflect.TypeFor[initConfig]()).Elem()
	fill(v, map[reflect.Type]bool{})
	if b, err := json.Marshal(v.Interface()); err == nil {
		var c initConfig
		_ = json.Unmarshal(b, &c)
	}
}

// fill gives every pointer, slice and map below v one element, so that
// encoding v, and decoding the result, meets every type v holds.
func fill(v reflect.Value, seen map[reflect.Type]bool) {
	t := v.Type()
	if seen[t] {
		return // a recursive type: once is enough
	}
	seen[t] = true
	defer delete(seen, t)
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(t.Elem()))
		fill(v.Elem(), seen)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Field(i); f.CanSet() {
				fill(f, seen)
			}
		}
	case reflect.Slice:
		v.Set(reflect.MakeSlice(t, 1, 1))
		fill(v.Index(0), seen)
	case reflect.Map:
		e := reflect.New(t.Elem()).Elem()
		fill(e, seen)
		m := reflect.MakeMap(t)
		m.SetMapIndex(reflect.New(t.Key()).Elem(), e)
		v.Set(m)
	}
}
