// Package errdefs defines the classes of error every tent package wraps
// (not found, already exists, invalid argument, conflict, ...), so that
// callers test with errors.Is and the API server maps each class to one
// HTTP status in one place.
package errdefs
