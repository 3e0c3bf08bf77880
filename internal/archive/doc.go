// Package archive applies image layers (tar streams, plain, gzip or zstd)
// to directories, safely: every path is resolved inside the target, so
// "../", absolute names and symlinks in the layer can never make it write
// outside. Whiteouts are either turned into overlayfs's own markers (for a
// layer unpacked as an overlay upper directory) or carried out by deleting
// (for a layer unpacked on top of a copy of its parent).
package archive
