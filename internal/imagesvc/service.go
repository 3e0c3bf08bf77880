// Package imagesvc is the engine's image service: the Engine API's image
// endpoints (list, inspect, history, tag, remove, prune, import, load,
// save, pull, push, login) over the image store (internal/images) and
// the distribution service, with their events, the sizes dockerd
// reports, and docker's rules for images that containers use. The
// daemon composes it and answers for the containers (Containers).
package imagesvc

import (
	"sync"

	"github.com/moby/moby/api/types/events"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/content"
	"github.com/tent-project/tent/internal/distribution"
	"github.com/tent-project/tent/internal/eventbus"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
	"github.com/tent-project/tent/internal/snapshot"
)

// OverlayDriver is the storage driver's name with overlayfs: docker's
// for the same layout (a directory per layer, stacked as overlay lowers).
const OverlayDriver = "overlay2"

// Containers is what the service asks of the engine's containers.
type Containers interface {
	// ImageUsers counts the containers made from each image (by ID).
	ImageUsers() map[string]int64
	// ImageUser is a container made from the image and whether it runs
	// ("" if none is); it may wait for a busy container, where
	// ImageUsers does not.
	ImageUser(id digest.Digest) (container string, running bool)
}

// Config is what a Service works on.
type Config struct {
	Store    *images.Store
	Content  *content.Store
	Snap     snapshot.Snapshotter
	Driver   string // the storage driver's name: OverlayDriver or "native"
	Registry *registry.Client
	Events   *eventbus.Bus
	// Containers must be set before the service answers.
	Containers Containers
}

// Service answers the image endpoints.
type Service struct {
	store   *images.Store
	content *content.Store
	snap    snapshot.Snapshotter
	driver  string
	dist    *distribution.Service
	events  *eventbus.Bus
	ctrs    Containers
	// Mu serializes image deletion against container creation (the
	// daemon's create holds it while it takes an image's layers).
	Mu sync.Mutex
	// sizes memoizes the unpacked size of image layers by chain key (a
	// committed layer never changes).
	sizeMu sync.Mutex
	sizes  map[string]int64
}

// New makes the service.
func New(c Config) *Service {
	s := &Service{store: c.Store, content: c.Content, snap: c.Snap, driver: c.Driver, events: c.Events,
		ctrs: c.Containers, sizes: map[string]int64{}}
	s.dist = distribution.New(c.Store, c.Registry, s.Event)
	return s
}

// Event publishes an image event ("name" the reference, where there is
// one).
func (s *Service) Event(action events.Action, id, name string) {
	attrs := map[string]string{}
	if name != "" {
		attrs["name"] = name
	}
	s.events.Publish(events.ImageEventType, action, id, attrs)
}
