// Package oci builds OCI runtime specs as pure data: the default spec of
// `tent-runtime spec`, and (later) the spec of a container made from an
// image. Nothing here touches the kernel, so every output is testable.
package oci
