// Package wire is the protocol between tent's VM monitor on the host and
// the agent, the init of a VM's guest, over one virtio-serial port: a
// stream of frames, each a kind byte, a big-endian 32-bit process id, a
// big-endian 32-bit length and the payload. Process 0 is the workload;
// the others are execs, numbered by the host. The host sends the
// workload's configuration, the start, execs, stdin, signals and terminal
// sizes; the guest answers ready (or an error), each process's output
// and, at its end, its exit.
package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// The kinds of frame.
const (
	// Host to guest.
	Config = 'C' // JSON Process
	Start  = 'S'
	Exec   = 'x' // JSON Process: start it now, as the frame's process id
	Net    = 'N' // JSON []Iface: the guest's whole network, before the start and when it changes (its id: the request's)
	Stdin  = 'I'
	EOF    = 'i' // stdin closed
	Signal = 'K' // one byte: the signal's number; a second byte 1: every process
	Resize = 'R' // height and width, two big-endian 16-bit numbers each
	Sync   = 'Y' // write what the guest holds to its disks (its id: the request's)
	Hold   = 'H' // (a template's boot) answer ready, then wait for the configuration: the VM is saved as it waits

	// Guest to host.
	Ready  = 'r' // the workload is ready to start; an exec has started (payload: its guest PID, 4 bytes)
	Error  = 'e' // JSON Failure: the workload or exec could not be made
	Stdout = 'O'
	Stderr = 'E'
	Exit   = 'X' // JSON ExitStatus
	Done   = 'y' // a Sync or Net is done (its id: the request's); payload: a JSON Failure if it failed
)

// MaxFrame bounds a frame's payload: larger writes are split.
const MaxFrame = 1 << 20

// Process is the workload the guest runs, from the container's OCI spec.
type Process struct {
	Args           []string `json:"args"`
	Env            []string `json:"env,omitempty"`
	Cwd            string   `json:"cwd,omitempty"`
	UID            uint32   `json:"uid"`
	GID            uint32   `json:"gid"`
	AdditionalGids []uint32 `json:"additionalGids,omitempty"`
	Terminal       bool     `json:"terminal,omitempty"`
	OpenStdin      bool     `json:"openStdin,omitempty"`
	Hostname       string   `json:"hostname,omitempty"`
	ReadonlyRootfs bool     `json:"readonlyRootfs,omitempty"`
	// Files are written into the root before the start (path in the
	// container: content), as the engine's /etc/hosts, /etc/hostname and
	// /etc/resolv.conf.
	Files map[string][]byte `json:"files,omitempty"`
	// Rlimits are applied to the workload (name as RLIMIT_NOFILE).
	Rlimits []Rlimit `json:"rlimits,omitempty"`
	// Mounts are made in the root before the start, in order.
	Mounts []Mount `json:"mounts,omitempty"`
	// Time is the host's clock (Unix nanoseconds) when it sent the
	// configuration to a VM started from a template, whose clock is the
	// template's (0: a booted VM, which has its boot's, from the RTC).
	Time int64 `json:"time,omitempty"`
	// Helper (an exec's): the agent runs its own helper with these
	// arguments, as root, with the workload's root as descriptor 3
	// (`copier ...`: docker cp into a running VM, internal/copier),
	// rather than Args.
	Helper []string `json:"helper,omitempty"`
	// Seed is randomness from the host for the guest's random number
	// generator: VMs started from one template have the same state.
	Seed []byte `json:"seed,omitempty"`
}

// Mount is one of the guest's mounts: a 9p share of the host's (Tag), or
// one file of it (File, the file's name in the share: a bind of a single
// file), or a tmpfs (Tag empty) with Options.
type Mount struct {
	Tag      string `json:"tag,omitempty"`
	File     string `json:"file,omitempty"`
	Dest     string `json:"dest"`
	ReadOnly bool   `json:"readonly,omitempty"`
	Options  string `json:"options,omitempty"` // a tmpfs's (size=, mode=)
}

// FromSpec is the part of an OCI process a guest runs: command,
// environment, directory, user and groups, terminal, rlimits.
func FromSpec(p *specs.Process) Process {
	w := Process{Args: p.Args, Env: p.Env, Cwd: p.Cwd, UID: p.User.UID, GID: p.User.GID,
		AdditionalGids: p.User.AdditionalGids, Terminal: p.Terminal}
	for _, rl := range p.Rlimits {
		w.Rlimits = append(w.Rlimits, Rlimit{Type: rl.Type, Soft: rl.Soft, Hard: rl.Hard})
	}
	return w
}

// HelperCopier is the helper docker cp into a running VM runs (the
// first of Process.Helper).
const HelperCopier = "copier"

// Rlimit is one resource limit.
type Rlimit struct {
	Type string `json:"type"`
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
}

// NICs is how many network interfaces every VM has: the networks a VM
// container can be on at once. The devices are fixed (microvm plugs
// none in later, and a template's must be a started VM's); a VM on no
// network has them without a backend, and its guest never loads their
// driver.
const NICs = 4

// NICMAC is the MAC address QEMU gives NIC i, by which the agent tells
// the NICs apart before it gives them the containers' addresses.
func NICMAC(i int) string { return fmt.Sprintf("52:54:00:74:6e:%02x", i) }

// Iface is the configuration of one of the guest's network interfaces,
// taken from the container's veth (whose traffic the host mirrors to the
// VM's tap device).
type Iface struct {
	// Index is the NIC's: the container's eth<Index>, on QEMU's tap
	// device tap<Index>; the guest names it eth<Index> too.
	Index   int      `json:"index"`
	MAC     string   `json:"mac"`
	Addrs   []string `json:"addrs"` // CIDR, IPv4 and IPv6
	Gateway string   `json:"gateway,omitempty"`
	// Gateway6 is the IPv6 default route's (on a network with IPv6).
	Gateway6 string `json:"gateway6,omitempty"`
	MTU      int    `json:"mtu,omitempty"`
}

// Failure is an Error frame's payload: the error's text and its class
// (internal/errdefs), so that a missing program is "not found" on the
// host too.
type Failure struct {
	Message string `json:"message"`
	Class   string `json:"class,omitempty"`
}

// ExitStatus is how the workload ended, in docker's terms (128+signal for
// a killed process).
type ExitStatus struct {
	Code int `json:"code"`
}

// Writer writes frames; it is safe for concurrent use.
type Writer struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriter writes frames to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write sends one frame of kind for the workload (process 0).
func (fw *Writer) Write(kind byte, p []byte) error { return fw.WriteID(kind, 0, p) }

// WriteID sends one frame of kind for process id (several when p is
// over MaxFrame).
func (fw *Writer) WriteID(kind byte, id uint32, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for {
		n := min(len(p), MaxFrame)
		var hdr [9]byte
		hdr[0] = kind
		binary.BigEndian.PutUint32(hdr[1:], id)
		binary.BigEndian.PutUint32(hdr[5:], uint32(n))
		if _, err := fw.w.Write(append(hdr[:], p[:n]...)); err != nil {
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
}

// A Frame is one message.
type Frame struct {
	Kind byte
	ID   uint32
	P    []byte
}

// Read reads the next frame from r.
func Read(r io.Reader) (Frame, error) {
	var hdr [9]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return Frame{}, err
	}
	n := binary.BigEndian.Uint32(hdr[5:])
	if n > MaxFrame {
		return Frame{}, fmt.Errorf("wire: a frame of %d bytes", n)
	}
	f := Frame{Kind: hdr[0], ID: binary.BigEndian.Uint32(hdr[1:]), P: make([]byte, n)}
	if _, err := io.ReadFull(r, f.P); err != nil {
		return Frame{}, err
	}
	return f, nil
}
