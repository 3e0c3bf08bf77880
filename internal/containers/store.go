package containers

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/tent-project/tent/internal/errdefs"
	bolt "go.etcd.io/bbolt"
)

var bucket = []byte("containers") // ID -> Record

// Store is the engine's containers: in memory by ID and by name, their
// records in a bolt database.
type Store struct {
	db    *bolt.DB
	mu    sync.Mutex
	byID  map[string]*Container
	names map[string]string // name -> ID, reserved names too

	// The writes of a container's record land in the order they were
	// asked for: each waits for the one before it (a start does not
	// wait for its record, so an exit's or a removal's may come while
	// it is being written).
	writesMu  sync.Mutex
	lastWrite map[string]chan struct{} // ID -> closed once its last write is done
}

// NewStore keeps records in db (its "containers" bucket).
func NewStore(db *bolt.DB) *Store {
	return &Store{db: db, byID: map[string]*Container{}, names: map[string]string{}, lastWrite: map[string]chan struct{}{}}
}

// Load reads every record; bad is called for one that cannot be read
// (it is skipped).
func (s *Store) Load(bad func(id string, err error)) ([]Record, error) {
	var recs []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		if bk == nil {
			return nil
		}
		return bk.ForEach(func(k, v []byte) error {
			var r Record
			if err := json.Unmarshal(v, &r); err != nil {
				bad(string(k), err)
				return nil
			}
			recs = append(recs, r)
			return nil
		})
	})
	return recs, err
}

// Save writes c's record; callers hold c.Mu (or own c exclusively).
func (s *Store) Save(c *Container) error {
	return <-s.SaveAsync(c)
}

// SaveAsync takes a copy of c's record now and writes it in the
// background, after the writes of c's record asked for before; the
// channel gives the result.
func (s *Store) SaveAsync(c *Container) <-chan error {
	b, err := json.Marshal(c.Record)
	if err != nil {
		done := make(chan error, 1)
		done <- err
		return done
	}
	return s.write(c.ID, func(bk *bolt.Bucket) error { return bk.Put([]byte(c.ID), b) })
}

// DeleteRecord removes the record of container id, after the writes of
// it asked for before.
func (s *Store) DeleteRecord(id string) error {
	return <-s.write(id, func(bk *bolt.Bucket) error { return bk.Delete([]byte(id)) })
}

// write runs op on the bucket in a transaction of its own once the
// last write of id's record asked for before it is done.
func (s *Store) write(id string, op func(*bolt.Bucket) error) <-chan error {
	done := make(chan error, 1)
	finished := make(chan struct{})
	s.writesMu.Lock()
	before := s.lastWrite[id]
	s.lastWrite[id] = finished
	s.writesMu.Unlock()
	go func() {
		if before != nil {
			<-before
		}
		err := s.db.Update(func(tx *bolt.Tx) error {
			bk, err := tx.CreateBucketIfNotExists(bucket)
			if err != nil {
				return err
			}
			return op(bk)
		})
		s.writesMu.Lock()
		if s.lastWrite[id] == finished {
			delete(s.lastWrite, id)
		}
		s.writesMu.Unlock()
		close(finished)
		done <- err
	}()
	return done
}

// Add makes c findable, under its name (which ReserveName may already
// hold for it).
func (s *Store) Add(c *Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byID[c.ID] = c
	s.names[c.Name] = c.ID
}

// Forget makes c unfindable and frees its name.
func (s *Store) Forget(c *Container) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, c.ID)
	if s.names[c.Name] == c.ID {
		delete(s.names, c.Name)
	}
}

// Has says whether container id is known.
func (s *Store) Has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.byID[id]
	return ok
}

// Get finds a container by full ID, name or unique ID prefix.
func (s *Store) Get(ref string) (*Container, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.byID[ref]; ok {
		return c, nil
	}
	if id, ok := s.names[strings.TrimPrefix(ref, "/")]; ok && s.byID[id] != nil {
		return s.byID[id], nil
	}
	var found *Container
	if ref != "" {
		for id, c := range s.byID {
			if strings.HasPrefix(id, ref) {
				if found != nil {
					return nil, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", ref, errdefs.ErrInvalidArgument)
				}
				found = c
			}
		}
	}
	if found == nil {
		return nil, fmt.Errorf("No such container: %s: %w", ref, errdefs.ErrNotFound)
	}
	return found, nil
}

// GetRunning finds a running (or paused) container and returns it with
// c.Mu held; the caller unlocks it.
func (s *Store) GetRunning(ref string) (*Container, error) {
	c, err := s.Get(ref)
	if err != nil {
		return nil, err
	}
	c.Mu.Lock()
	if !c.Running() {
		c.Mu.Unlock()
		return nil, fmt.Errorf("container %s is not running: %w", c.ID, errdefs.ErrConflict)
	}
	return c, nil
}

// All returns every container, newest first.
func (s *Store) All() []*Container {
	s.mu.Lock()
	out := make([]*Container, 0, len(s.byID))
	for _, c := range s.byID {
		out = append(out, c)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Created.After(out[j].Created) })
	return out
}

var validName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

// ReserveName claims name for container id, or a generated one when name
// is empty, and returns it (without a leading "/").
func (s *Store) ReserveName(name, id string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reserve(name, id)
}

func (s *Store) reserve(name, id string) (string, error) {
	if name == "" {
		for i := 0; ; i++ {
			name = randomName(i)
			if _, taken := s.names[name]; !taken {
				break
			}
		}
	} else {
		if !validName.MatchString(name) {
			return "", fmt.Errorf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed: %w", name, errdefs.ErrInvalidArgument)
		}
		name = strings.TrimPrefix(name, "/")
		if other, taken := s.names[name]; taken {
			return "", fmt.Errorf("Conflict. The container name \"/%s\" is already in use by container \"%s\". You have to remove (or rename) that container to be able to reuse that name: %w", name, other, errdefs.ErrConflict)
		}
	}
	s.names[name] = id
	return name, nil
}

// ReleaseName frees a name that ReserveName gave.
func (s *Store) ReleaseName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.names, name)
}

// Rename gives c a new name (c.Mu is held) and returns the old one; the
// caller saves the record.
func (s *Store) Rename(c *Container, name string) (old string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if name, err = s.reserve(name, c.ID); err != nil {
		return "", err
	}
	old = c.Name
	delete(s.names, old)
	c.Name = name
	return old, nil
}

// Names for containers the user did not name, in docker's
// "adjective_noun" style. The nouns are kinds of shelter.
var (
	adjectives = []string{"agile", "bold", "brave", "calm", "clever", "cosy", "eager", "fair",
		"gentle", "happy", "jolly", "keen", "kind", "lively", "lucky", "merry", "nimble", "proud",
		"quick", "quiet", "sharp", "shy", "snug", "steady", "swift", "tidy", "vivid", "warm", "wise", "zesty"}
	nouns = []string{"bivouac", "cabin", "canopy", "chalet", "cottage", "dome", "gazebo", "hammock",
		"hut", "igloo", "kiosk", "lean_to", "lodge", "marquee", "pavilion", "pergola", "shack",
		"shanty", "shelter", "tarp", "teepee", "tipi", "trailer", "treehouse", "wigwam", "yurt"}
)

// randomName returns a generated name; after a few collisions it adds a
// number, as docker does.
func randomName(attempt int) string {
	name := adjectives[rand.IntN(len(adjectives))] + "_" + nouns[rand.IntN(len(nouns))]
	if attempt > 3 {
		name += fmt.Sprint(rand.IntN(10))
	}
	return name
}
