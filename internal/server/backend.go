package server

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/checkpoint"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
	"github.com/opencontainers/go-digest"
	"github.com/tent-project/tent/internal/backend"
	"github.com/tent-project/tent/internal/builder"
	"github.com/tent-project/tent/internal/copier"
	"github.com/tent-project/tent/internal/distribution"
	"github.com/tent-project/tent/internal/images"
	"github.com/tent-project/tent/internal/registry"
)

// Backend is what the server serves: the engine (*daemon.Daemon), or a
// test's fake. Errors carry an errdefs class, which the server maps to an
// HTTP status (errorStatus); errdefs.ErrNotModified becomes 304.
type Backend interface {
	Containers
	Execs
	Checkpoints
	Images
	Volumes
	Networks
	System
}

// Checkpoints are a container's saved states (POST, GET and DELETE
// /containers/{id}/checkpoints).
type Checkpoints interface {
	CheckpointCreate(ref string, r checkpoint.CreateRequest) error
	CheckpointList(ref string) ([]checkpoint.Summary, error)
	CheckpointDelete(ref, name string) error
}

// Containers are the container endpoints' operations.
type Containers interface {
	Create(o backend.CreateOpts, cfg *container.Config, hc *container.HostConfig, nc *network.NetworkingConfig) (container.CreateResponse, error)
	List(o backend.ListOpts) ([]container.Summary, error)
	Inspect(ref string, size bool) (*container.InspectResponse, error)
	// Start starts a container, from a checkpoint of its if not "".
	Start(ref, checkpoint string) error
	Stop(ref string, sig string, timeout *int) error
	Restart(ref string, sig string, timeout *int) error
	Kill(ref, sig string) error
	Pause(ref string, pause bool) error
	Wait(ctx context.Context, ref string, cond container.WaitCondition, ready func()) (container.WaitResponse, error)
	Remove(ref string, force, volumes bool) error
	Rename(ref, name string) error
	Prune(f backend.PruneFilter) (ids []string, reclaimed uint64, err error)
	Top(ref, psArgs string) (*container.TopResponse, error)
	Logs(ctx context.Context, ref string, o backend.LogOpts, ready func(tty bool) io.Writer) error
	Attach(ref string, stdin, stdout, stderr bool, detachKeys []byte) (backend.Attachment, error)
	Resize(ref string, height, width uint16) error
	Changes(ref string) ([]container.FilesystemChange, error)
	Export(ref string, w io.Writer) error
	Commit(ref string, o backend.CommitOptions) (digest.Digest, error)
	Stats(ctx context.Context, ref string, stream, oneShot bool, send func(*container.StatsResponse) error) error
	Update(ref string, u container.UpdateConfig) ([]string, error)
	SystemDF(types []string) (*backend.DiskUsage, error)
	ArchiveStat(ref, path string) (container.PathStat, error)
	ArchiveGet(ref, path string) (container.PathStat, io.ReadCloser, error)
	ArchivePut(ref, path string, r io.Reader, o copier.PutOptions) error
}

// Execs are the exec endpoints' operations.
type Execs interface {
	ExecCreate(ref string, cfg container.ExecCreateRequest) (string, error)
	ExecInspect(id string) (*container.ExecInspectResponse, error)
	ExecStart(id string, detach, rawOut bool, in io.Reader, out io.Writer, closeOut func()) error
	ExecResize(id string, height, width uint16) error
}

// Images are the image and distribution endpoints' operations.
type Images interface {
	ImageList(all bool, filters map[string][]string, sharedSize bool) ([]image.Summary, error)
	ImageInspect(ref string) (*image.InspectResponse, error)
	ImageHistory(ref string) ([]image.HistoryResponseItem, error)
	ImageImport(r io.Reader, name string, changes []string, message, platform string) (*images.Image, error)
	ImageLoad(r io.Reader) ([]images.Loaded, error)
	ImageSave(w io.Writer, refs []string) error
	ImageTag(ref, name string) error
	ImageRemove(ref string, force bool) ([]image.DeleteResponse, error)
	ImagePrune(all bool, f backend.PruneFilter) ([]image.DeleteResponse, error)
	ImagePull(ctx context.Context, ref, platform string, auth registry.Auth, out *distribution.Progress) error
	ImagePush(ctx context.Context, name, tag string, auth registry.Auth, out *distribution.Progress) error
	Build(ctx context.Context, o builder.Options, body io.Reader, out builder.Output) (digest.Digest, error)
	BuildKnown(ctx context.Context, o builder.Options, out builder.Output) (digest.Digest, bool)
	BuildPrune() (*build.CachePruneReport, error)
	Login(ctx context.Context, auth registry.Auth) error
}

// Volumes are the volume endpoints' operations.
type Volumes interface {
	VolumeCreate(req volume.CreateRequest) (volume.Volume, error)
	VolumeInspect(name string) (volume.Volume, error)
	VolumeList(f map[string][]string) (volume.ListResponse, error)
	VolumeRemove(name string, force bool) error
	VolumePrune(everything bool, f backend.PruneFilter) (volume.PruneReport, error)
}

// Networks are the network endpoints' operations.
type Networks interface {
	NetworkCreate(req network.CreateRequest) (network.CreateResponse, error)
	NetworkInspect(ref string) (network.Inspect, error)
	NetworkList(f map[string][]string) ([]network.Inspect, error)
	NetworkRemove(ref string) error
	NetworkPrune(f backend.PruneFilter) ([]string, error)
	NetworkConnect(ref, container string, es *network.EndpointSettings) error
	NetworkDisconnect(ref, container string, force bool) error
}

// System are /info and /events.
type System interface {
	Info() (*system.Info, error)
	Subscribe(since time.Time) (past []events.Message, ch <-chan events.Message, cancel func())
}
