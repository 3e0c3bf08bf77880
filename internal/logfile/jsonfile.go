package logfile

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
)

// jsonCodec is docker's json-file format: a JSON object and a newline a
// record.
type jsonCodec struct{}

func (jsonCodec) encode(dst []byte, e Entry) ([]byte, error) {
	b, err := json.Marshal(e)
	if err != nil {
		return dst, err
	}
	return append(append(dst, b...), '\n'), nil
}

func (jsonCodec) decode(r io.Reader, o ReadOpts) ([]Entry, int64, error) {
	br := bufio.NewReaderSize(r, 64*1024)
	var out []Entry
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if err == io.EOF {
			return out, n, nil
		}
		if err != nil {
			return out, n, err
		}
		n += int64(len(line))
		var e Entry
		if json.Unmarshal(line, &e) != nil {
			continue // a line torn by a crash before this writer's time
		}
		if o.selects(&e) {
			out = append(out, e)
		}
	}
}

// validEnd is after the last newline: the end of the file, but for a
// torn line (read back only then; this runs at every container start).
func (jsonCodec) validEnd(f *os.File, n int64) (int64, error) {
	if n == 0 {
		return 0, nil
	}
	var last [1]byte
	if _, err := f.ReadAt(last[:], n-1); err != nil {
		return 0, err
	}
	if last[0] == '\n' {
		return n, nil
	}
	buf := make([]byte, 64*1024)
	for end := n; end > 0; {
		start := max(end-int64(len(buf)), 0)
		chunk := buf[:end-start]
		if _, err := f.ReadAt(chunk, start); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(chunk, '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}
