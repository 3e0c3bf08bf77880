// Package images keeps images: names (references, normalized as docker
// does: "busybox" is docker.io/library/busybox:latest), their configs and
// layers in the content store, and their unpacked file systems as a chain
// of committed snapshots keyed by chainID, so that images sharing layers
// share them on disk. An image's ID is the digest of its config, as in
// docker.
package images
