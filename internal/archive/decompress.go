package archive

import (
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"

	// klauspost's gzip: the standard library's format, decoded faster.
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

var (
	gzipMagic  = []byte{0x1f, 0x8b}
	zstdMagic  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	bzip2Magic = []byte("BZh")
	xzMagic    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
)

// ErrXZ is an xz-compressed stream, which Decompress cannot read yet.
var ErrXZ = errors.New("xz-compressed archives are not supported yet")

// Decompress returns the uncompressed stream of r, whatever of plain tar,
// gzip, zstd or bzip2 it is (xz is refused: no decoder here yet). Close
// releases the decoder.
func Decompress(r io.Reader) (io.ReadCloser, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, err := br.Peek(6)
	if err != nil && err != io.EOF {
		return nil, fmt.Errorf("read layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, gzipMagic):
		return gzip.NewReader(br)
	case bytes.HasPrefix(head, zstdMagic):
		d, err := zstd.NewReader(br)
		if err != nil {
			return nil, err
		}
		return d.IOReadCloser(), nil
	case bytes.HasPrefix(head, bzip2Magic):
		return io.NopCloser(bzip2.NewReader(br)), nil
	case bytes.HasPrefix(head, xzMagic):
		return nil, ErrXZ
	}
	return io.NopCloser(br), nil
}
