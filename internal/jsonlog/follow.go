package jsonlog

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Follower reads what is appended to a log as it rotates, losing and
// repeating nothing: it holds the file it reads, so that when the writer
// renames it away (path.1) and starts a new one at path, the follower
// drains the old file to its end before it moves to the new one, which
// it reads from its start. (With one file only, rotation truncates it in
// place: what was written between the last read and the truncation is
// lost, as with docker.)
type Follower struct {
	path string
	o    ReadOpts
	f    *os.File
	pos  int64 // where the next complete line starts
}

// NewFollower follows the log at path from offset (as Read returned it).
func NewFollower(path string, offset int64, o ReadOpts) *Follower {
	o.Tail = -1
	fl := &Follower{path: path, o: o, pos: offset}
	fl.f, _ = os.Open(path) // a log not made yet is opened when it is
	return fl
}

// Next returns the entries written since the last call.
func (fl *Follower) Next() ([]Entry, error) {
	if fl.f == nil {
		f, err := os.Open(fl.path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		fl.f, fl.pos = f, 0
	}
	out, err := fl.read()
	if err != nil {
		return out, err
	}
	var held, now syscall.Stat_t
	if syscall.Fstat(int(fl.f.Fd()), &held) != nil || syscall.Stat(fl.path, &now) != nil {
		return out, nil // between a rename and the new file: next time
	}
	switch {
	case held.Ino != now.Ino || held.Dev != now.Dev:
		// Rotated: the held file is complete. Files rotated after it
		// (it is path.k, they are path.k-1 ... path.1) come next, whole,
		// then the new path.
		next := []string{}
		for k := 1; k <= 64; k++ {
			var st syscall.Stat_t
			if syscall.Stat(rotated(fl.path, k), &st) != nil {
				break
			}
			if st.Ino == held.Ino && st.Dev == held.Dev {
				for j := k - 1; j >= 1; j-- {
					next = append(next, rotated(fl.path, j))
				}
				break
			}
		}
		for _, p := range append(next, fl.path) {
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			fl.f.Close()
			fl.f, fl.pos = f, 0
			more, err := fl.read()
			if out = append(out, more...); err != nil {
				return out, err
			}
		}
		return out, nil
	case now.Size < fl.pos: // truncated in place
		fl.pos = 0
		more, err := fl.read()
		return append(out, more...), err
	}
	return out, nil
}

// read decodes the complete lines after pos in the held file.
func (fl *Follower) read() ([]Entry, error) {
	if _, err := fl.f.Seek(fl.pos, io.SeekStart); err != nil {
		return nil, err
	}
	entries, n, err := decode(fl.f, fl.o)
	fl.pos += n
	return entries, err
}

// Close releases the held file.
func (fl *Follower) Close() error {
	if fl.f == nil {
		return nil
	}
	return fl.f.Close()
}
