package main

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// writeInPlace writes the existing regular file at path (fi), which cannot
// be replaced by rename (see output.write), keeping its inode, owner, mode
// and links. The object is fetched into a temporary file first — beside
// path where its directory is writable, else in the temporary directory or
// the user's cache directory, wherever it fits — and copied into path only
// once all of it is fetched and verified, so a failed or interrupted get
// leaves path as it was. Only where no such place has room is path
// truncated at the first byte and written straight from the network, as
// curl -o writes it (then direct is true: a failure leaves it partial). A
// failing copy (a disk error) also leaves it partial, and says so.
func writeInPlace(path string, fi fs.FileInfo, fsync bool, size int64, fill func(io.Writer) (n int64, err error)) (n int64, direct bool, err error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return 0, false, fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer f.Close()
	if now, err := f.Stat(); err != nil || !os.SameFile(now, fi) {
		return 0, false, fmt.Errorf("cannot write %s: it was replaced while it was opened; run the command again", path)
	}
	// Its own bytes come back when it is rewritten.
	if free, ok := freeSpace(f); ok && size > 0 && uint64(size) > free+uint64(fi.Size()) {
		return 0, false, fmt.Errorf("cannot write %s: no room for its %d bytes (%s): %s has %s free", path, size, formatBytes(uint64(size)), filepath.Dir(path), formatBytes(free+uint64(fi.Size())))
	}
	stage := stagingFile(path, size)
	if stage == nil {
		n, err = fill(&truncateFirst{f: f})
		return n, true, finishInPlace(path, f, fsync, err)
	}
	defer func() {
		_ = os.Remove(stage.Name())
		_ = stage.Close()
	}()
	if n, err = fillTemp(stage, false, fill); err != nil {
		return n, false, err
	}
	if err := copyInto(f, stage, n); err != nil {
		// Not direct: the read did not fail, and the error says it all.
		return n, false, fmt.Errorf("cannot write %s: copying the fetched object into it failed, it is now partial: %w", path, err)
	}
	return n, false, finishInPlace(path, f, fsync, nil)
}

// finishInPlace syncs (with fsync) and closes f, written in place.
func finishInPlace(path string, f *os.File, fsync bool, err error) error {
	if err == nil && fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("cannot write %s: %w", path, cerr)
	}
	return err
}

// stagingFile creates (and locks) the temporary file a get writing path in
// place fills first: beside path where its directory is writable, else in
// os.TempDir, else in the user's cache directory; the first with room for
// size bytes (0: not known). nil where none can take it.
func stagingFile(path string, size int64) *os.File {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	dirs := []string{dir, os.TempDir()}
	if cache, err := os.UserCacheDir(); err == nil {
		dirs = append(dirs, cache)
	}
	for _, d := range dirs {
		if !dirWritable(d) {
			continue
		}
		removeStaleTemps(d, base)
		f, err := createTemp(path, d, base)
		if err != nil {
			continue
		}
		if free, ok := freeSpace(f); !ok || size <= 0 || uint64(size) <= free {
			return f
		}
		_ = os.Remove(f.Name())
		_ = f.Close()
	}
	return nil
}

// copyInto rewrites f with the n bytes of src, from its start, and cuts f
// to n.
func copyInto(f, src *os.File, n int64) error {
	if _, err := src.Seek(0, io.SeekStart); err != nil {
		return err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	copied, err := io.Copy(f, io.LimitReader(src, n))
	if err == nil && copied != n {
		err = fmt.Errorf("copied %d of %d bytes", copied, n)
	}
	if err == nil {
		err = f.Truncate(n)
	}
	return err
}

// truncateFirst truncates its file at the first write, so a get that
// fails before its first byte leaves a file written in place as it was.
type truncateFirst struct {
	f     *os.File
	begun bool
}

func (t *truncateFirst) Write(p []byte) (int, error) {
	if !t.begun {
		if err := t.f.Truncate(0); err != nil {
			return 0, err
		}
		t.begun = true
	}
	return t.f.Write(p)
}
