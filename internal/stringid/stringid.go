// Package stringid makes the engine's IDs: 64 hexadecimal digits of
// randomness, as docker's container and exec IDs.
package stringid

import (
	"crypto/rand"
	"encoding/hex"
)

// New is a new ID.
func New() string {
	b := make([]byte, 32)
	rand.Read(b)
	return hex.EncodeToString(b)
}
