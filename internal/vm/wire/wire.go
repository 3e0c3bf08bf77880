// Package wire is the protocol between tent's VM monitor on the host and
// the agent, the init of a VM's guest, over one virtio-serial port: a
// stream of frames, each a kind byte, a big-endian 32-bit length and the
// payload. The host sends the workload's configuration, the start,
// stdin, signals and terminal sizes; the guest answers ready (or an
// error), the workload's output and, at its end, its exit.
package wire

import (
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

// The kinds of frame.
const (
	// Host to guest.
	Config = 'C' // JSON Process
	Start  = 'S'
	Stdin  = 'I'
	EOF    = 'i' // stdin closed
	Signal = 'K' // one byte: the signal's number; a second byte 1: every process
	Resize = 'R' // height and width, two big-endian 16-bit numbers each

	// Guest to host.
	Ready  = 'r'
	Error  = 'e' // text: the workload could not be made
	Stdout = 'O'
	Stderr = 'E'
	Exit   = 'X' // JSON ExitStatus
)

// MaxFrame bounds a frame's payload: larger writes are split.
const MaxFrame = 1 << 20

// Process is the workload the guest runs, from the container's OCI spec.
type Process struct {
	Args           []string          `json:"args"`
	Env            []string          `json:"env,omitempty"`
	Cwd            string            `json:"cwd,omitempty"`
	UID            uint32            `json:"uid"`
	GID            uint32            `json:"gid"`
	AdditionalGids []uint32          `json:"additionalGids,omitempty"`
	Terminal       bool              `json:"terminal,omitempty"`
	OpenStdin      bool              `json:"openStdin,omitempty"`
	Hostname       string            `json:"hostname,omitempty"`
	ReadonlyRootfs bool              `json:"readonlyRootfs,omitempty"`
	// Files are written into the root before the start (path in the
	// container: content), as the engine's /etc/hosts, /etc/hostname and
	// /etc/resolv.conf.
	Files map[string][]byte `json:"files,omitempty"`
	// Rlimits are applied to the workload (name as RLIMIT_NOFILE).
	Rlimits []Rlimit `json:"rlimits,omitempty"`
}

// Rlimit is one resource limit.
type Rlimit struct {
	Type string `json:"type"`
	Soft uint64 `json:"soft"`
	Hard uint64 `json:"hard"`
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

// Write sends one frame of kind (several when p is over MaxFrame).
func (fw *Writer) Write(kind byte, p []byte) error {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for {
		n := min(len(p), MaxFrame)
		var hdr [5]byte
		hdr[0] = kind
		binary.BigEndian.PutUint32(hdr[1:], uint32(n))
		if _, err := fw.w.Write(append(hdr[:], p[:n]...)); err != nil {
			return err
		}
		p = p[n:]
		if len(p) == 0 {
			return nil
		}
	}
}

// Read reads the next frame from r.
func Read(r io.Reader) (kind byte, p []byte, err error) {
	var hdr [5]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, err
	}
	n := binary.BigEndian.Uint32(hdr[1:])
	if n > MaxFrame {
		return 0, nil, fmt.Errorf("wire: a frame of %d bytes", n)
	}
	p = make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return 0, nil, err
	}
	return hdr[0], p, nil
}
