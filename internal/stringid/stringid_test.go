package stringid

import (
	"encoding/hex"
	"testing"
)

func TestNew(t *testing.T) {
	a, b := New(), New()
	if len(a) != 64 || a == b {
		t.Fatalf("%q %q: want two different 64-digit IDs", a, b)
	}
	if _, err := hex.DecodeString(a); err != nil {
		t.Errorf("%q is not hexadecimal: %v", a, err)
	}
}
