//go:build !amd64

package nsenter

// Entry exists on every architecture so the build works everywhere; only
// amd64 has the assembly that joins a user namespace, so elsewhere it is
// never linked as the entry point and Supported reports false.
func Entry() {}
