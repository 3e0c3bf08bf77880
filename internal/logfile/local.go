package logfile

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
)

// localCodec is the record format of docker's local log driver, so that
// its files read as dockerd's do: a record is a LogEntry protocol buffer
// (source = 1, time_nano = 2, line = 3, partial = 4) with its length as a
// big-endian uint32 before and after it. The length after lets a reader
// check a record's end, and find the last complete one from the end of
// the file. The line is kept without its newline; partial says it had
// none.
type localCodec struct{}

// Protocol buffer field numbers of docker's LogEntry.
const (
	fieldSource   protowire.Number = 1
	fieldTimeNano protowire.Number = 2
	fieldLine     protowire.Number = 3
	fieldPartial  protowire.Number = 4
)

// maxRecord bounds a record's length (a line is at most 16 KiB; more
// means the file is not a log of this format).
const maxRecord = 1 << 20

func (localCodec) encode(dst []byte, e Entry) ([]byte, error) {
	line, complete := strings.CutSuffix(e.Log, "\n")
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = protowire.AppendTag(dst, fieldSource, protowire.BytesType)
	dst = protowire.AppendString(dst, e.Stream)
	dst = protowire.AppendTag(dst, fieldTimeNano, protowire.VarintType)
	dst = protowire.AppendVarint(dst, uint64(e.Time.UnixNano()))
	dst = protowire.AppendTag(dst, fieldLine, protowire.BytesType)
	dst = protowire.AppendString(dst, line)
	if !complete {
		dst = protowire.AppendTag(dst, fieldPartial, protowire.VarintType)
		dst = protowire.AppendVarint(dst, 1)
	}
	size := uint32(len(dst) - start - 4)
	binary.BigEndian.PutUint32(dst[start:], size)
	return binary.BigEndian.AppendUint32(dst, size), nil
}

func (localCodec) decode(r io.Reader, o ReadOpts) ([]Entry, int64, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var out []Entry
	var n int64
	var head [4]byte
	var buf []byte
	for {
		if _, err := io.ReadFull(br, head[:]); err != nil {
			return out, n, ignoreEOF(err)
		}
		size := binary.BigEndian.Uint32(head[:])
		if size > maxRecord {
			return out, n, fmt.Errorf("log record of %d bytes at offset %d: %w", size, n, errCorrupt)
		}
		if cap(buf) < int(size)+4 {
			buf = make([]byte, size+4)
		}
		buf = buf[:size+4]
		if _, err := io.ReadFull(br, buf); err != nil {
			return out, n, ignoreEOF(err) // torn: written later, or never
		}
		if binary.BigEndian.Uint32(buf[size:]) != size {
			return out, n, fmt.Errorf("log record at offset %d: lengths differ: %w", n, errCorrupt)
		}
		e, err := unmarshalEntry(buf[:size])
		if err != nil {
			return out, n, fmt.Errorf("log record at offset %d: %w: %w", n, errCorrupt, err)
		}
		n += int64(size) + 8
		if o.selects(&e) {
			out = append(out, e)
		}
	}
}

var errCorrupt = errors.New("not a local log driver file")

func ignoreEOF(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return nil
	}
	return err
}

func unmarshalEntry(b []byte) (Entry, error) {
	var e Entry
	partial := false
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return e, protowire.ParseError(n)
		}
		b = b[n:]
		switch {
		case num == fieldSource && typ == protowire.BytesType:
			e.Stream, n = protowire.ConsumeString(b)
		case num == fieldLine && typ == protowire.BytesType:
			e.Log, n = protowire.ConsumeString(b)
		case num == fieldTimeNano && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			e.Time = time.Unix(0, int64(v)).UTC()
		case num == fieldPartial && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			partial = v != 0
		default: // partial_log_metadata and what later versions add
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return e, protowire.ParseError(n)
		}
		b = b[n:]
	}
	if !partial {
		e.Log += "\n"
	}
	return e, nil
}

// validEnd trusts a file whose last four bytes are a length that the
// four bytes before that record repeat; else it walks the records from
// the start.
func (localCodec) validEnd(f *os.File, n int64) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	var b [4]byte
	if n >= 8 {
		if _, err := f.ReadAt(b[:], n-4); err != nil {
			return 0, err
		}
		size := int64(binary.BigEndian.Uint32(b[:]))
		if start := n - 8 - size; start >= 0 {
			if _, err := f.ReadAt(b[:], start); err != nil {
				return 0, err
			}
			if int64(binary.BigEndian.Uint32(b[:])) == size {
				return n, nil
			}
		}
	}
	none := ReadOpts{Since: time.Unix(1<<40, 0)} // count the records, keep none
	_, end, err := localCodec{}.decode(io.NewSectionReader(f, 0, n), none)
	if errors.Is(err, errCorrupt) {
		err = nil
	}
	return end, err
}
