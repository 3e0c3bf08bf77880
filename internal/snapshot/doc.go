// Package snapshot keeps the file system trees that images and containers
// are made of, as a chain of snapshots: each layer of an image is a
// committed snapshot on top of its parent, and a container's root is an
// active (writable) snapshot on top of its image's last layer.
//
// Terms, as containerd uses them: Prepare makes an active snapshot under a
// key; Commit turns it into a committed snapshot under a name, which can be
// a parent but not be written; View makes a read-only active snapshot;
// Mounts tells how to mount an active snapshot. Two implementations share
// one conformance suite: overlay (layers shared, nothing copied) and
// native (each snapshot a full copy, for file systems without overlayfs).
package snapshot
