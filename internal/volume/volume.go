// Package volume is docker's "local" volume driver: a volume is a
// directory, ROOT/NAME/_data, recorded in a bbolt bucket. Named volumes
// are made by `volume create` or by the first container that names one;
// anonymous ones (-v /path, VOLUME in an image) get a random name and a
// label. A volume with options (type, device, o: mount(8)'s -t, device
// and -o) is mounted on its _data while running containers use it.
package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/volume"
	"github.com/tent-project/tent/internal/errdefs"
	"github.com/tent-project/tent/internal/runtime"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

var bucket = []byte("volumes")

// AnonymousLabel marks an anonymous volume, as docker does.
const AnonymousLabel = "com.docker.volume.anonymous"

// Volume is a volume's record.
type Volume struct {
	Name      string            `json:"name"`
	CreatedAt time.Time         `json:"createdAt"`
	Labels    map[string]string `json:"labels,omitempty"`
	Options   map[string]string `json:"options,omitempty"`
}

// Anonymous tells whether the volume was made without a name.
func (v *Volume) Anonymous() bool {
	_, ok := v.Labels[AnonymousLabel]
	return ok
}

// Store holds the volumes of one data root.
type Store struct {
	db      *bolt.DB
	root    string
	publish func(action events.Action, name string)

	// mu serializes creation and removal (and the in-use check). A caller
	// that must register a user of new volumes before any removal can
	// see them unused (a container's create) holds it: Lock, CreateLocked.
	mu sync.Mutex
	// users counts the running users of volumes with options.
	usersMu sync.Mutex
	users   map[string]int
}

// New opens the volumes recorded in db, kept under root; publish is told
// of each volume made and removed (the engine's events).
func New(db *bolt.DB, root string, publish func(action events.Action, name string)) *Store {
	return &Store{db: db, root: root, publish: publish, users: map[string]int{}}
}

// Path is volume name's data directory.
func (s *Store) Path(name string) string { return filepath.Join(s.root, name, "_data") }

// Get returns volume name.
func (s *Store) Get(name string) (*Volume, error) {
	var v *Volume
	err := s.db.View(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucket); bk != nil {
			if b := bk.Get([]byte(name)); b != nil {
				v = &Volume{}
				return json.Unmarshal(b, v)
			}
		}
		return nil
	})
	if err == nil && v == nil {
		err = fmt.Errorf("get %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	return v, err
}

// List returns every volume.
func (s *Store) List() ([]*Volume, error) {
	var out []*Volume
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(_, b []byte) error {
			v := &Volume{}
			if err := json.Unmarshal(b, v); err != nil {
				return err
			}
			out = append(out, v)
			return nil
		})
	})
	return out, err
}

// Lock and Unlock hold off creations and removals (see CreateLocked).
func (s *Store) Lock()   { s.mu.Lock() }
func (s *Store) Unlock() { s.mu.Unlock() }

// Create makes volume name (a random one when empty), or returns the
// existing one of that name; created says which.
func (s *Store) Create(name string, labels, opts map[string]string) (v *Volume, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.CreateLocked(name, labels, opts)
}

// CreateLocked is Create with the store locked.
func (s *Store) CreateLocked(name string, labels, opts map[string]string) (v *Volume, created bool, err error) {
	if name == "" {
		name = randomName()
	} else if err := CheckName(name); err != nil {
		return nil, false, err
	}
	if err := ValidateOptions(name, opts); err != nil {
		return nil, false, err
	}
	if v, err := s.Get(name); err == nil {
		return v, false, nil
	}
	v = &Volume{Name: name, CreatedAt: time.Now().UTC(), Labels: labels, Options: opts}
	if err := os.MkdirAll(s.Path(name), 0o755); err != nil {
		return nil, false, err
	}
	b, err := json.Marshal(v)
	if err == nil {
		err = s.db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return bk.Put([]byte(name), b)
		})
	}
	if err != nil {
		os.RemoveAll(filepath.Dir(s.Path(name)))
		return nil, false, err
	}
	s.publish(events.ActionCreate, name)
	return v, true, nil
}

// Remove deletes volume name and its data, unless users (which lists the
// containers that mount a volume) names any: the check and the removal
// happen under the store's lock.
func (s *Store) Remove(name string, users func(name string) []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.Get(name); err != nil {
		return fmt.Errorf("remove %s: no such volume: %w", name, errdefs.ErrNotFound)
	}
	if u := users(name); len(u) > 0 {
		return fmt.Errorf("remove %s: volume is in use - [%s]: %w", name, strings.Join(u, ", "), errdefs.ErrConflict)
	}
	unmount(s.Path(name)) // one that a crash left mounted
	if err := os.RemoveAll(filepath.Dir(s.Path(name))); err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if bk := tx.Bucket(bucket); bk != nil {
			return bk.Delete([]byte(name))
		}
		return nil
	}); err != nil {
		return err
	}
	s.publish(events.ActionDestroy, name)
	return nil
}

// API describes v as the Engine API does.
func (s *Store) API(v *Volume) volume.Volume {
	labels, opts := v.Labels, v.Options
	if labels == nil {
		labels = map[string]string{}
	}
	if opts == nil {
		opts = map[string]string{}
	}
	return volume.Volume{Name: v.Name, Driver: "local", Mountpoint: s.Path(v.Name), Scope: "local",
		CreatedAt: v.CreatedAt.Format(time.RFC3339), Labels: labels, Options: opts}
}

// ValidateOptions applies the local driver's rules to the options of
// volume name: only type, device and o; type and device together; o only
// with both. The messages are dockerd's.
func ValidateOptions(name string, opts map[string]string) error {
	for k := range opts {
		if k != "type" && k != "device" && k != "o" {
			return fmt.Errorf("create %s: invalid option: %q: %w", name, k, errdefs.ErrInvalidArgument)
		}
	}
	required := map[string][]string{"type": {"device"}, "device": {"type"}, "o": {"device", "type"}}
	for _, k := range []string{"type", "device", "o"} {
		if _, ok := opts[k]; !ok {
			continue
		}
		for _, need := range required[k] {
			if _, ok := opts[need]; !ok {
				return fmt.Errorf("create %s: missing required option: %q: %w", name, need, errdefs.ErrInvalidArgument)
			}
		}
	}
	return nil
}

// validName is docker's rule for local volume names (which also keeps
// them from being paths).
var validName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// CheckName refuses a name the local driver does not take.
func CheckName(name string) error {
	if !validName.MatchString(name) {
		return fmt.Errorf("%q includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path: %w", name, errdefs.ErrInvalidArgument)
	}
	return nil
}

func randomName() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Size is the bytes of the regular files in volume name.
func (s *Store) Size(name string) int64 {
	var n int64
	filepath.Walk(s.Path(name), func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

// Volumes with options are mounted while running containers use them,
// as docker's local driver does: the first user's start mounts, the last
// one's end unmounts (a tmpfs volume starts empty each time). A restarted
// engine counts its running containers again (Count).

// Acquire mounts those of the named volumes that have options and no
// running user yet, and counts one more user of each.
func (s *Store) Acquire(names []string) error {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	var done []string
	for _, n := range names {
		v, err := s.Get(n)
		if err != nil || len(v.Options) == 0 {
			continue
		}
		if s.users[n] == 0 {
			if err := mount(v, s.Path(n)); err != nil {
				s.releaseLocked(done)
				return fmt.Errorf("error while mounting volume '%s': %w", s.Path(n), err)
			}
		}
		s.users[n]++
		done = append(done, n)
	}
	return nil
}

// Release undoes Acquire once a user has stopped.
func (s *Store) Release(names []string) {
	s.usersMu.Lock()
	s.releaseLocked(names)
	s.usersMu.Unlock()
}

// Count counts a running user found at start-up, whose volumes are
// still mounted.
func (s *Store) Count(names []string) {
	s.usersMu.Lock()
	defer s.usersMu.Unlock()
	for _, n := range names {
		if v, err := s.Get(n); err == nil && len(v.Options) > 0 {
			s.users[n]++
		}
	}
}

func (s *Store) releaseLocked(names []string) {
	for _, n := range names {
		if s.users[n] == 0 {
			continue // not one with options
		}
		if s.users[n]--; s.users[n] == 0 {
			delete(s.users, n)
			unmount(s.Path(n))
		}
	}
}

func mount(v *Volume, target string) error {
	flags, data := runtime.MountOptions(v.Options["o"])
	dev := v.Options["device"]
	if flags&unix.MS_BIND != 0 {
		// As mount(8): a bind takes its read-only flag on a remount.
		if err := unix.Mount(dev, target, "", flags&^unix.MS_RDONLY, ""); err != nil {
			return err
		}
		if flags&unix.MS_RDONLY != 0 {
			return unix.Mount("", target, "", flags|unix.MS_REMOUNT, "")
		}
		return nil
	}
	return unix.Mount(dev, target, v.Options["type"], flags, data)
}

func unmount(target string) { _ = unix.Unmount(target, unix.MNT_DETACH) }
