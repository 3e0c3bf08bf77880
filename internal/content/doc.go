// Package content stores blobs by the sha256 digest of their bytes
// (image layers, configs, manifests). A blob is written to a temporary
// file in the store, checked against the digest it claims, synced, and
// only then renamed into place: a crash at any point leaves either no blob
// or a whole, verified one, plus temporary files that Open ignores and
// New sweeps away.
package content
