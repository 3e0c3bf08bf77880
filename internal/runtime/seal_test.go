package runtime

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

func TestSealBinaryIsImmutableCopy(t *testing.T) {
	want, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := SealBinary("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer bin.Close()
	if !sealed(bin) {
		t.Fatal("SealBinary returned a file without the write, grow and shrink seals")
	}
	got, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", bin.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("sealed copy differs from the binary (%d bytes, want %d)", len(got), len(want))
	}
	// Not even a new writable description of the same memfd may change it.
	w, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", bin.Fd()), os.O_WRONLY, 0)
	if err == nil {
		_, err = w.Write([]byte("x"))
		w.Close()
	}
	if err == nil {
		t.Fatal("wrote to a sealed binary")
	}

	// A process running from an ordinary file gets a fresh sealed copy.
	self, err := sealedSelf()
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if !sealed(self) {
		t.Fatal("sealedSelf returned an unsealed file")
	}
}
