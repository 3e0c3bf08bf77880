// Package caps names Linux capabilities ("CAP_SYS_ADMIN") and maps them to
// the kernel's numbers, for the runtime (which applies them) and the daemon
// (which resolves --cap-add and --cap-drop).
package caps
