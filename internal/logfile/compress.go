package logfile

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

const gzSuffix = ".gz"

// compressRotated gzips the file that the last rotation made (path.1)
// into path.1.gz and removes it. The gzip header's comment names the
// file it was made from (device and inode), so that a follower that
// held the plain file finds where it went. A crash leaves the plain file,
// which a new writer compresses, or both, of which the plain one goes.
func (w *Writer) compressRotated() error {
	src := rotated(w.o.Path, 1)
	in, err := os.Open(src)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer in.Close()
	dst := src + gzSuffix
	if _, err := os.Stat(dst); err == nil {
		return os.Remove(src)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(in.Fd()), &st); err != nil {
		return err
	}
	tmp := dst + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	zw.Comment = fileID(&st)
	_, err = io.Copy(zw, in)
	err = errors.Join(err, zw.Close(), out.Close())
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("compress %s: %w", src, err)
	}
	return os.Remove(src)
}

func fileID(st *syscall.Stat_t) string { return fmt.Sprintf("dev=%d ino=%d", st.Dev, st.Ino) }

// gzFrom says whether the gzipped file at path was made from the file
// that st describes.
func gzFrom(path string, st *syscall.Stat_t) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return false
	}
	return zr.Comment == fileID(st)
}

// openRotated opens a log file, or its gzipped form.
func openRotated(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return f, err
	}
	if f, err = os.Open(path + gzSuffix); err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", f.Name(), err)
	}
	return gzipFile{zr, f}, nil
}

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error { return errors.Join(g.Reader.Close(), g.f.Close()) }
