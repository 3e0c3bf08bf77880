// Package backend holds what the engine's operations take and give
// beyond the Engine API's own types: list, log and prune options and the
// attachment of a client to a container's streams. The server
// (internal/server) speaks to the engine in these and the API's types
// only, through its Backend interface; the daemon implements them.
package backend

import (
	"context"
	"io"
	"time"

	"github.com/moby/moby/api/types/build"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/volume"
)

// CreateOpts are what a container's create takes beside its
// configuration (the query of POST /containers/create, and the request's
// API version where it changes the defaults).
type CreateOpts struct {
	Name     string
	Platform string // os[/arch[/variant]], or "" for the image's
	// ReadOnlyNonRecursive: a read-only bind or volume makes only its top
	// mount read-only, not the mounts below it (clients before API 1.44).
	ReadOnlyNonRecursive bool
	// CgroupnsHostDefault: a container that names no cgroup namespace
	// mode gets the host's on a cgroup v1 host (clients before API 1.41),
	// unless it is a VM, whose guest has its own.
	CgroupnsHostDefault bool
}

// ListOpts are the options of `ps`.
type ListOpts struct {
	All     bool
	Limit   int
	Filters map[string][]string
	// Size: each container's SizeRw and SizeRootFs (ps -s).
	Size bool
}

// LogOpts are the options of `logs`.
type LogOpts struct {
	Stdout, Stderr, Follow, Timestamps bool
	Since, Until                       time.Time
	Tail                               int // negative: all
}

// PruneFilter is docker's prune filters: until, label, label!.
type PruneFilter struct {
	Until             time.Time
	Labels, NotLabels []string
}

// Matches reports whether an object created then with those labels is
// pruned.
func (f PruneFilter) Matches(created time.Time, labels map[string]string) bool {
	if !f.Until.IsZero() && !created.Before(f.Until) {
		return false
	}
	for _, l := range f.NotLabels {
		if AllLabels(labels, []string{l}) {
			return false
		}
	}
	return AllLabels(labels, f.Labels)
}

// AllLabels reports whether labels has every "key" or "key=value" asked.
func AllLabels(labels map[string]string, want []string) bool {
	for _, w := range want {
		k, v, hasValue := cut(w)
		got, ok := labels[k]
		if !ok || hasValue && got != v {
			return false
		}
	}
	return true
}

func cut(kv string) (k, v string, ok bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return kv, "", false
}

// Attachment is a client attached to a container's streams, taken
// before the client hears its attach was accepted (a docker CLI starts
// the container at once).
type Attachment interface {
	// Terminal tells whether the stream is raw (a terminal) or framed.
	Terminal() bool
	// Stream relays in and out until the container stops, the client
	// hangs up or types the detach keys; closeOut half-closes the
	// client's connection.
	Stream(ctx context.Context, in io.Reader, out io.Writer, closeOut func())
	// Cancel gives up an attachment that will not be streamed.
	Cancel()
}

// CommitOptions are POST /commit's settings.
type CommitOptions struct {
	Repo, Tag, Comment, Author string
	// Pause freezes a running container while its layer is written.
	Pause bool
	// Changes are Dockerfile instructions applied to the image's config.
	Changes []string
	// Config's fields, where set, override the container's in the image.
	Config *container.Config
}

// DiskUsage is GET /system/df in the form the API had up to 1.51 (the
// one the docker CLI reads): every image with its size, the part of it
// other images share and its containers; every container with its
// writable layer's size; every volume with its size and users; the
// build cache's records (the step cache images). Images and the build
// cache count their layers' stored (compressed) bytes, as dockerd does.
type DiskUsage struct {
	LayersSize int64
	Images     []image.Summary
	Containers []container.Summary
	Volumes    []volume.Volume
	BuildCache []build.CacheRecord
}
