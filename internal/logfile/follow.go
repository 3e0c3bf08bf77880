package logfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// Follower reads what is appended to a log as it rotates, losing and
// repeating nothing: it holds the file it reads, so that when the writer
// renames it away (path.1, perhaps gzipped into path.1.gz since) and
// starts a new one at path, the follower drains the held file to its end,
// reads the files rotated after it whole, and goes on with the new one
// from its start. (With one file only, rotation truncates it in place:
// what was written between the last read and the truncation is lost, as
// with docker.)
type Follower struct {
	path  string
	codec codec
	o     ReadOpts
	f     *os.File
	pos   int64 // where the next complete record starts
	// missed counts the reads since the held file was rotated away
	// without being found among the rotated files (a rotation under
	// way); after a few, the follower gives it up for the new file.
	missed int
}

// NewFollower follows the log at path from offset (as Read returned it).
func NewFollower(path string, f Format, offset int64, o ReadOpts) *Follower {
	o.Tail = -1
	fl := &Follower{path: path, codec: codecOf(f), o: o, pos: offset}
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
		// Rotated. The writer closed the held file before it renamed
		// it: what it wrote there since the read above is there now,
		// and read (a follower kept off the CPU between that read and
		// the stat lost it). Files rotated after it (it is path.k, they
		// are path.k-1 ... path.1) come next, whole, then the new path.
		more, err := fl.read()
		if out = append(out, more...); err != nil {
			return out, err
		}
		k := fl.heldAt(&held)
		if k == 0 && fl.missed < 3 {
			fl.missed++
			return out, nil
		}
		fl.missed = 0
		for j := k - 1; j >= 1; j-- {
			more, err := fl.readWhole(rotated(fl.path, j))
			if out = append(out, more...); err != nil {
				return out, err
			}
		}
		f, err := os.Open(fl.path)
		if err != nil {
			return out, nil // next time
		}
		fl.f.Close()
		fl.f, fl.pos = f, 0
		more, err = fl.read()
		return append(out, more...), err
	case now.Size < fl.pos: // truncated in place
		fl.pos = 0
		more, err := fl.read()
		return append(out, more...), err
	}
	return out, nil
}

// heldAt is k where path.k, or path.k.gz made from it, is the held file;
// 0 if none is.
func (fl *Follower) heldAt(held *syscall.Stat_t) int {
	for k := 1; k <= maxRotated; k++ {
		p := rotated(fl.path, k)
		var st syscall.Stat_t
		plain := syscall.Stat(p, &st) == nil
		if plain && st.Ino == held.Ino && st.Dev == held.Dev {
			return k
		}
		if gzFrom(p+gzSuffix, held) {
			return k
		}
		if _, err := os.Stat(p + gzSuffix); !plain && err != nil {
			return 0 // no path.k: the held file is not among them
		}
	}
	return 0
}

// read decodes the complete records after pos in the held file.
func (fl *Follower) read() ([]Entry, error) {
	if _, err := fl.f.Seek(fl.pos, io.SeekStart); err != nil {
		return nil, err
	}
	entries, n, err := fl.codec.decode(fl.f, fl.o)
	fl.pos += n
	return entries, err
}

func (fl *Follower) readWhole(path string) ([]Entry, error) {
	r, err := openRotated(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // rotated out of reach meanwhile
	}
	if err != nil {
		return nil, err
	}
	defer r.Close()
	entries, _, err := fl.codec.decode(r, fl.o)
	return entries, err
}

// Close releases the held file.
func (fl *Follower) Close() error {
	if fl.f == nil {
		return nil
	}
	return fl.f.Close()
}
