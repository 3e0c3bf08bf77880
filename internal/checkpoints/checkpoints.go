// Package checkpoints keeps a container's checkpoints (docs/vm.md): each
// a directory, named by dockerd's rule for checkpoint IDs, below the
// container's data (so removed with it), holding the state its task
// saved and the addresses its networks gave it, which a restore asks for
// again (the guest kept them).
package checkpoints

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/checkpoint"
	"github.com/tent-project/tent/internal/errdefs"
)

// nameRule is dockerd's rule for checkpoint IDs.
var nameRule = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// endpointsFile holds a checkpoint's addresses by network ID.
const endpointsFile = "endpoints.json"

// Endpoint is an address a checkpointed container had on a network.
type Endpoint struct {
	IP  netip.Addr `json:"ip"`
	IP6 netip.Addr `json:"ip6,omitzero"` // on a network with IPv6
	MAC string     `json:"mac"`
}

// CheckName refuses a name dockerd would refuse.
func CheckName(name string) error {
	if !nameRule.MatchString(name) {
		return fmt.Errorf("invalid checkpoint ID (%s), only %s are allowed: %w", name, nameRule, errdefs.ErrInvalidArgument)
	}
	return nil
}

// Store is the checkpoints of one container, in directory Root.
type Store struct {
	Root string
	// Container names it in errors.
	Container string
}

// Dir is where checkpoint name is, if it exists.
func (s Store) Dir(name string) (string, error) {
	if err := CheckName(name); err != nil {
		return "", err
	}
	dir := filepath.Join(s.Root, name)
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("checkpoint %s does not exist for container %s: %w", name, s.Container, errdefs.ErrNotFound)
	}
	return dir, nil
}

// Create makes checkpoint name: the endpoints eps, and what save writes
// into the checkpoint's directory. A checkpoint is there whole or not at
// all.
func (s Store) Create(name string, eps map[string]Endpoint, save func(dir string) error) error {
	if err := CheckName(name); err != nil {
		return err
	}
	dir := filepath.Join(s.Root, name)
	if _, err := os.Stat(dir); err == nil {
		return fmt.Errorf("checkpoint with name %s already exists for container %s: %w", name, s.Container, errdefs.ErrAlreadyExists)
	}
	if err := os.MkdirAll(s.Root, 0o700); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(s.Root, ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // gone once renamed
	b, _ := json.Marshal(eps)
	if err := os.WriteFile(filepath.Join(tmp, endpointsFile), b, 0o600); err != nil {
		return err
	}
	if err := save(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, dir)
}

// List lists the checkpoints, by name.
func (s Store) List() ([]checkpoint.Summary, error) {
	out := []checkpoint.Summary{}
	ents, err := os.ReadDir(s.Root)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	for _, e := range ents {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, checkpoint.Summary{Name: e.Name()})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Delete removes checkpoint name.
func (s Store) Delete(name string) error {
	dir, err := s.Dir(name)
	if err != nil {
		return err
	}
	return os.RemoveAll(dir)
}

// Endpoints are the addresses the container of the checkpoint in dir
// had, by network ID (none for no checkpoint, dir "").
func Endpoints(dir string) (map[string]Endpoint, error) {
	if dir == "" {
		return nil, nil
	}
	b, err := os.ReadFile(filepath.Join(dir, endpointsFile))
	if err != nil {
		return nil, fmt.Errorf("the checkpoint's addresses: %w", err)
	}
	var out map[string]Endpoint
	return out, json.Unmarshal(b, &out)
}
