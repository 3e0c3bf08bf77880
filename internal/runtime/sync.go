package runtime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/tent-project/tent/internal/errdefs"
)

// Messages between the runtime (parent) and the container's init (child),
// as JSON values on a stream socket.
const (
	msgConfig    = "config"       // parent -> child: initConfig
	msgHooks     = "hooks"        // child -> parent: run the createRuntime hooks now
	msgHooksDone = "hooks-done"   // parent -> child
	msgNetwork   = "network"      // child -> parent: the network must be in place now (CreateOpts.Network)
	msgNetDone   = "network-done" // parent -> child
	msgReady     = "ready"        // child -> parent: set up, waiting for start
	msgError     = "error"        // child -> parent: set-up failed, with the reason
)

type message struct {
	Type  string `json:"type"`
	Error string `json:"error,omitempty"`
	// Class is the error's class (errdefs.ClassOf), kept across the pipe.
	Class  string      `json:"class,omitempty"`
	Config *initConfig `json:"config,omitempty"`
}

// initConfig is everything the child needs to build the container.
type initConfig struct {
	Spec    *specs.Spec    `json:"spec"`
	Process *specs.Process `json:"process"`
	Rootfs  string         `json:"rootfs"`
	NoPivot bool           `json:"no_pivot,omitempty"`
	// Mounts says where the container's mounts live (init and exec).
	Mounts mountMode `json:"mounts,omitempty"`
	// NoNewKeyring keeps the caller's session keyring.
	NoNewKeyring bool `json:"no_new_keyring,omitempty"`
	// Console: fd consoleFd is a unix socket to send the pty master on.
	Console bool `json:"console,omitempty"`
	// CgroupNS: unshare a cgroup namespace once placed in the cgroup.
	CgroupNS bool `json:"cgroup_ns,omitempty"`
	// NewNet: the init made a network namespace, whose loopback it brings up.
	NewNet bool `json:"new_net,omitempty"`
	// WaitNetwork: the caller configures that namespace from outside
	// (CreateOpts.Network); the init waits for it before its sysctls.
	WaitNetwork bool `json:"wait_network,omitempty"`
	// CgroupPath is the container's cgroup, for mounts of type cgroup.
	CgroupPath string `json:"cgroup_path,omitempty"`
	// UserNS: the container has its own user namespace.
	UserNS bool `json:"user_ns,omitempty"`
	// MountNS (exec): the mount namespace file to join.
	MountNS string `json:"mount_ns,omitempty"`
	// State is passed on stdin to the createContainer and startContainer hooks.
	State specs.State `json:"state"`
}

// File descriptors the child finds open.
const (
	syncFd    = 3
	binaryFd  = 4 // the sealed copy of the runtime binary being executed
	fifoFd    = 5 // create only
	consoleFd = 6 // optional
	usernsFd  = 7 // exec into a container with a user namespace
)

// mountMode is where a container's mounts live: a mount namespace of its
// own (the default), one joined by path, or none of its own.
type mountMode string

const (
	// mountsNew: the init unshares a mount namespace and pivots into the root.
	mountsNew mountMode = ""
	// mountsJoined: the parent joined a namespace by path before forking;
	// the init sets the root up there and pivots, as runc does.
	mountsJoined mountMode = "joined"
	// mountsShared: no mount namespace was listed, so the container
	// inherits the runtime's (OCI: an unlisted namespace is inherited).
	// Its root is a private bind of root.path that the runtime makes
	// before the init and unmounts at delete (with everything mounted
	// under it), and its processes are chrooted into it.
	mountsShared mountMode = "shared"
)

type channel struct {
	f   *os.File
	enc *json.Encoder
	dec *json.Decoder
}

func newChannel(f *os.File) *channel {
	return &channel{f: f, enc: json.NewEncoder(f), dec: json.NewDecoder(f)}
}

// close ends the conversation; later sends fail instead of writing to
// whatever file reuses the descriptor.
func (c *channel) close() { c.f.Close() }

func (c *channel) send(m message) error { return c.enc.Encode(m) }

// recv reads the next message; an error message from the peer becomes an error.
func (c *channel) recv() (message, error) {
	var m message
	if err := c.dec.Decode(&m); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return m, errors.New("container init exited before it was ready")
		}
		return m, fmt.Errorf("read from container init: %w", err)
	}
	if m.Type == msgError {
		return m, errdefs.WithClass(errors.New(m.Error), m.Class)
	}
	return m, nil
}

// expect reads the next message and checks its type.
func (c *channel) expect(typ string) (message, error) {
	m, err := c.recv()
	if err == nil && m.Type != typ {
		err = fmt.Errorf("container init: got message %q, want %q", m.Type, typ)
	}
	return m, err
}
