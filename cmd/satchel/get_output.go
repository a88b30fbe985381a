package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/satchel-net/satchel/internal/fsutil"
)

// writeOutput writes the output of `satchel get` to path through fill.
//
// A regular file (or a path that does not exist yet) is written atomically
// by writeAtomic. Anything else that exists at path — a character or block
// device such as /dev/null, a FIFO, a socket, a terminal — is opened and
// written straight to: a temporary file renamed over it would replace the
// device node with a regular file (as root, /dev/null itself). direct
// reports which way was taken; on a direct write, a failure can leave part
// of the bytes written.
//
// With fsync, a regular file is made durable before it is renamed into
// place (see writeAtomic); without it the bytes are left to the page cache,
// as curl, wget and ipfs get leave them. size, when above 0, is how many
// bytes fill will write: a regular file whose file system has less room
// fails before fill is called (see writeAtomicSize).
func writeOutput(path string, fsync bool, size int64, fill func(io.Writer) (int64, error)) (n int64, direct bool, err error) {
	fi, err := os.Stat(path) // follows symbolic links: /dev/stdout is one
	switch {
	case errors.Is(err, fs.ErrNotExist):
		n, err = writeAtomicSize(path, fsync, size, fill)
		return n, false, err
	case err != nil:
		return 0, false, fmt.Errorf("cannot write %s: %w", path, err)
	case fi.IsDir():
		return 0, false, fmt.Errorf("cannot write %s: it is a directory; name a file inside it", path)
	case fi.Mode().IsRegular():
		target, err := filepath.EvalSymlinks(path)
		if err != nil {
			return 0, false, fmt.Errorf("cannot write %s: %w", path, err)
		}
		n, err = writeAtomicSize(target, fsync, size, fill)
		return n, false, err
	}
	n, err = writeDirect(path, fill)
	return n, true, err
}

// checkOutputDir refuses an output path whose directory does not exist (or
// is not a directory), so get fails before it reads anything, and says so
// in the user's terms rather than with the temporary file's name.
func checkOutputDir(path string) error {
	dir := filepath.Dir(path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("cannot write %s: directory %s does not exist; create it first (mkdir -p %s)", path, dir, dir)
	case err != nil:
		return fmt.Errorf("cannot write %s: %w", path, err)
	case !fi.IsDir():
		return fmt.Errorf("cannot write %s: %s is not a directory", path, dir)
	}
	return nil
}

// writeDirect opens an existing non-regular file for writing (no create, no
// truncate) and writes to it. It checks the opened file again, so a regular
// file put in its place after the first look is refused rather than
// overwritten in place.
func writeDirect(path string, fill func(io.Writer) (int64, error)) (int64, error) {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", path, err)
	}
	fi, err := f.Stat()
	if err == nil && fi.Mode().IsRegular() {
		err = fmt.Errorf("%s became a regular file while it was opened; run the command again", path)
	}
	if err != nil {
		_ = f.Close()
		return 0, fmt.Errorf("cannot write %s: %w", path, err)
	}
	n, err := fill(f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("cannot write %s: %w", path, cerr)
	}
	return n, err
}

// writeAtomic writes path through fill: the bytes go to a temporary file
// in the same directory, renamed to path only when fill succeeded, so path
// never holds a partial object. Use it only for a regular file or a new
// path (see writeOutput). A file replaced keeps its permissions; a new one
// gets 0666 less the umask, as cp and curl give it.
//
// The bytes go to the disk with direct I/O in large writes where the file
// system allows it (see get_direct.go), else through the page cache.
//
// With fsync the file is durable when writeAtomic returns: direct writes
// reach the device as they go and the final fdatasync flushes its cache;
// through the page cache, the bytes already written are flushed in steps of
// syncStep on a goroutine of their own (sync_file_range on Linux), so the
// disk works while the network does and the final fdatasync finds little
// left. Then the directory is synced after the rename. Without fsync nothing
// is synced: the file is complete, or absent, for every reader at once.
func writeAtomic(path string, fsync bool, fill func(io.Writer) (int64, error)) (int64, error) {
	return writeAtomicSize(path, fsync, 0, fill)
}

// writeAtomicSize is writeAtomic knowing that fill writes size bytes (0:
// not known): where the file system has less room than that, it fails
// before anything is fetched, naming both, instead of after downloading
// most of it. (Taking the space with fallocate would guarantee it, but
// direct writes into the preallocated extents did not measure faster here,
// rather slower: the file system converts each written range.)
func writeAtomicSize(path string, fsync bool, size int64, fill func(io.Writer) (int64, error)) (int64, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	mode := newFileMode()
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() {
		mode = fi.Mode().Perm()
	}
	f, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		if err := checkOutputDir(path); err != nil {
			return 0, err
		}
		var pe *fs.PathError
		if errors.As(err, &pe) { // name the directory, not the temporary file
			return 0, fmt.Errorf("cannot write %s: cannot create a file in %s: %w", path, dir, pe.Err)
		}
		return 0, fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	if free, ok := freeSpace(f); ok && size > 0 && uint64(size) > free {
		_ = f.Close()
		_ = os.Remove(tmp)
		return 0, fmt.Errorf("cannot write %s: no room for its %d bytes (%s): %s has %s free", path, size, formatBytes(uint64(size)), filepath.Dir(path), formatBytes(free))
	}
	var w io.Writer = f
	var finish func() error
	if useDirectOutput {
		// Refused (tmpfs, some network file systems): the page cache.
		if dw, err := openDirect(tmp); err == nil {
			w, finish = dw, dw.finish
		}
	}
	if finish == nil && fsync {
		sw := newStepSyncer(f, syncStep)
		w, finish = sw, sw.finish
	}
	n, err := fill(w)
	if finish != nil {
		if ferr := finish(); err == nil {
			err = ferr
		}
	}
	if err == nil {
		// After the bytes: a read-only mode would refuse the direct writer.
		err = f.Chmod(mode)
	}
	if err == nil && fsync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		if err = os.Rename(tmp, path); err != nil {
			err = fmt.Errorf("cannot write %s: %w", path, err)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
		return n, err
	}
	if fsync {
		if err := fsutil.SyncDir(dir); err != nil {
			return n, fmt.Errorf("%s is written but its directory could not be synced: %w", path, err)
		}
	}
	return n, nil
}

// useDirectOutput writes regular output files with direct I/O where the
// file system allows it (see get_direct.go); tests turn it off to cover the
// page-cache path.
var useDirectOutput = true

// syncStep is how many bytes a durable get writes between two flushes.
var syncStep int64 = 32 << 20

// stepSyncer passes writes to a file through and, each time step more bytes
// are written, asks a goroutine of its own to flush that range to the disk
// and wait for it, so a durable write overlaps the writing with the
// flushing and never holds more than a few steps of dirty pages.
type stepSyncer struct {
	f       *os.File
	step    int64
	written int64
	synced  int64 // start of the range not handed to the flusher yet
	ranges  chan [2]int64
	done    chan error
}

func newStepSyncer(f *os.File, step int64) *stepSyncer {
	s := &stepSyncer{f: f, step: step, ranges: make(chan [2]int64, 4), done: make(chan error, 1)}
	go func() {
		var err error
		for r := range s.ranges {
			if err == nil {
				err = syncRange(f, r[0], r[1])
			}
		}
		s.done <- err
	}()
	return s
}

// Write writes p to the file and hands every full step behind it to the
// flusher.
func (s *stepSyncer) Write(p []byte) (int, error) {
	n, err := s.f.Write(p)
	s.written += int64(n)
	for s.written-s.synced >= s.step {
		s.ranges <- [2]int64{s.synced, s.step}
		s.synced += s.step
	}
	return n, err
}

// finish stops the flusher and returns its first error; the caller then
// fsyncs the file for the rest.
func (s *stepSyncer) finish() error {
	close(s.ranges)
	if err := <-s.done; err != nil {
		return fmt.Errorf("cannot flush the output to disk: %w", err)
	}
	return nil
}
