package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/satchel-net/satchel/internal/fsutil"
)

// writeOutput writes the output of `satchel get` to path through fill:
// openOutput, then output.write.
func writeOutput(path string, fsync bool, size int64, fill func(io.Writer) (int64, error)) (int64, bool, error) {
	o, err := openOutput(path)
	if err != nil {
		return 0, false, err
	}
	defer o.Close()
	return o.write(fsync, size, fill)
}

// output is where a get writes, resolved (and a named descriptor
// duplicated) before anything else is opened: a later descriptor of
// satchel's own (a socket, an epoll) must never be taken for the user's
// /dev/fd/N.
type output struct {
	path string // as the user named it
	dest outputDest
	fd   *os.File // the named descriptor's duplicate
}

// openOutput resolves path (resolveOutput) and duplicates the descriptor
// it names. Through a symbolic link it refuses a device, FIFO or socket: a
// link planted in a shared directory must not turn a get into a write to a
// disk; name such a file itself (or its /dev/fd/N) to write into it.
func openOutput(path string) (*output, error) {
	dest, err := resolveOutput(path)
	if err != nil {
		return nil, fmt.Errorf("cannot write %s: %w", path, err)
	}
	o := &output{path: path, dest: dest}
	if dest.fd >= 0 {
		if o.fd, err = dupDescriptor(path, dest.fd); err != nil {
			return nil, err
		}
		return o, nil
	}
	if fi, err := os.Stat(dest.path); err == nil {
		if err := o.checkLinked(fi); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// sharesFile reports whether the output is the very file w writes to, as
// with -o /dev/stderr: a progress bar drawn on w would land among the
// object's bytes.
func (o *output) sharesFile(w io.Writer) bool {
	f, ok := w.(*os.File)
	if o == nil || !ok {
		return false
	}
	wi, err := f.Stat()
	if err != nil {
		return false
	}
	var oi fs.FileInfo
	if o.fd != nil {
		oi, err = o.fd.Stat()
	} else {
		oi, err = os.Stat(o.dest.path)
	}
	return err == nil && os.SameFile(wi, oi)
}

// checkLinked refuses a target other than a regular file or a directory
// reached through a symbolic link.
func (o *output) checkLinked(fi fs.FileInfo) error {
	if !o.dest.linked || fi.Mode().IsRegular() || fi.IsDir() {
		return nil
	}
	return fmt.Errorf("cannot write %s: it is a symbolic link to %s, a %s, which a get writes only when named itself", o.path, o.dest.path, fileKind(fi))
}

// fileKind names what a non-regular file is, for errors.
func fileKind(fi fs.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t&fs.ModeCharDevice != 0:
		return "character device"
	case t&fs.ModeDevice != 0:
		return "block device"
	case t&fs.ModeNamedPipe != 0:
		return "FIFO"
	case t&fs.ModeSocket != 0:
		return "socket"
	}
	return "special file"
}

// Close closes the duplicated descriptor, if any.
func (o *output) Close() error {
	if o.fd != nil {
		return o.fd.Close()
	}
	return nil
}

// write writes the object through fill.
//
// A named descriptor (/dev/stderr, /dev/fd/3, /proc/self/fd/3) is written
// through, never replaced; through a symbolic link, even a dangling one,
// the link's target is written and the link kept.
//
// A regular file (or a path that does not exist yet) is written atomically
// by writeAtomicSize, unless it cannot be replaced by rename (a mount
// point, a file with other hard links, in a directory this user cannot
// write, or whose owner cannot be kept): then it is filled beside (or in
// a temporary directory) and copied in once complete (writeInPlace). A
// file this user may not write is refused. Anything else that exists at
// path — a character or block device such as /dev/null, a FIFO, a socket,
// a terminal — is opened and written straight to: a temporary file renamed
// over it would replace the device node with a regular file (as root,
// /dev/null itself). direct reports whether the bytes went straight to
// their place, where a failure can leave part of them written.
//
// With fsync, a regular file is made durable before it is renamed into
// place (see writeAtomic); without it the bytes are left to the page cache,
// as curl, wget and ipfs get leave them. size, when above 0, is how many
// bytes fill will write: a regular file whose file system has less room
// fails before fill is called (see writeAtomicSize).
func (o *output) write(fsync bool, size int64, fill func(io.Writer) (int64, error)) (n int64, direct bool, err error) {
	path := o.path
	if o.fd != nil {
		n, err = fill(o.fd)
		return n, true, err
	}
	target := o.dest.path
	fi, err := os.Stat(target)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		n, err = writeAtomicSize(target, fsync, size, fill)
		return n, false, err
	case err != nil:
		return 0, false, fmt.Errorf("cannot write %s: %w", path, err)
	case fi.IsDir():
		return 0, false, fmt.Errorf("cannot write %s: it is a directory; name a file inside it", path)
	case fi.Mode().IsRegular():
		if err := checkWritable(target); err != nil {
			return 0, false, err
		}
		if inPlaceReason(target, fi) == "" {
			n, err = writeAtomicSize(target, fsync, size, fill)
			if !errors.Is(err, errOwnerNotKept) {
				return n, false, err
			}
		}
		return writeInPlace(target, fi, fsync, size, fill)
	}
	if err := o.checkLinked(fi); err != nil {
		return 0, false, err
	}
	n, err = writeDirect(target, fill)
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
	old, err := os.Stat(path)
	if err == nil && old.Mode().IsRegular() {
		mode = old.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	} else {
		old = nil
	}
	f, err := openTemp(path, dir, base, old, size)
	if err != nil {
		return 0, err
	}
	tmp := f.Name()
	n, err := fillTemp(f, fsync, fill)
	if err == nil {
		// After the bytes: a read-only mode would refuse the direct writer,
		// and a write by another user than the owner clears set-id bits.
		err = f.Chmod(mode)
	}
	if err == nil && fsync {
		err = f.Sync()
	}
	if err == nil {
		// Renamed while still open, so its lock (lockTemp) is held until
		// it has its final name: no other get takes it for stale.
		if err = os.Rename(tmp, path); err != nil {
			err = fmt.Errorf("cannot write %s: %w", path, err)
		}
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("cannot write %s: %w", path, cerr)
	}
	if err != nil {
		return n, err
	}
	if fsync {
		if err := fsutil.SyncDir(dir); err != nil {
			return n, fmt.Errorf("%s is written but its directory could not be synced: %w", path, err)
		}
	}
	return n, nil
}

// openTemp makes path's temporary file in dir (removing stale ones
// first), gives it old's owner when path exists, and checks that size
// bytes fit beside it.
func openTemp(path, dir, base string, old fs.FileInfo, size int64) (*os.File, error) {
	removeStaleTemps(dir, base)
	f, err := createTemp(path, dir, base)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*os.File, error) {
		_ = os.Remove(f.Name())
		_ = f.Close()
		return nil, err
	}
	if old != nil {
		if err := keepOwner(f, old); err != nil {
			if errors.Is(err, errOwnerNotKept) {
				return fail(err)
			}
			return fail(fmt.Errorf("cannot write %s: cannot keep its owner: %w", path, err))
		}
	}
	if free, ok := freeSpace(f); ok && size > 0 && uint64(size) > free {
		return fail(fmt.Errorf("cannot write %s: no room for its %d bytes (%s): %s has %s free", path, size, formatBytes(uint64(size)), filepath.Dir(path), formatBytes(free)))
	}
	return f, nil
}

// fillTemp writes the object into f through fill: direct I/O where the
// file system takes it, else the page cache, synced step by step when
// fsync is asked for.
func fillTemp(f *os.File, fsync bool, fill func(io.Writer) (int64, error)) (int64, error) {
	var w io.Writer = f
	var finish func() error
	if useDirectOutput {
		// Refused (tmpfs, some network file systems): the page cache.
		if dw, err := openDirect(f.Name()); err == nil {
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
	return n, err
}

// createTemp creates the temporary file for path in dir and locks it
// (lockTemp). A get cleaning up stale files may remove the file between
// its creation and the lock: then it is made again.
func createTemp(path, dir, base string) (*os.File, error) {
	for range 3 {
		f, err := os.CreateTemp(dir, "."+base+".*"+tempSuffix)
		if err != nil {
			if err := checkOutputDir(path); err != nil {
				return nil, err
			}
			var pe *fs.PathError
			if errors.As(err, &pe) { // name the directory, not the temporary file
				return nil, fmt.Errorf("cannot write %s: cannot create a file in %s: %w", path, dir, pe.Err)
			}
			return nil, fmt.Errorf("cannot write %s: %w", path, err)
		}
		if lockTemp(f) == nil {
			fi, err1 := f.Stat()
			named, err2 := os.Lstat(f.Name())
			if err1 == nil && err2 == nil && os.SameFile(fi, named) {
				return f, nil
			}
		}
		_ = f.Close() // removed or locked by a cleaner, which removes it
	}
	return nil, fmt.Errorf("cannot write %s: its temporary file in %s kept being removed; run the command again", path, dir)
}

// tempSuffix ends the name of a get's temporary file,
// .FILE.<random digits>.satchel.part: no other tool's file (nor a user's
// own .FILE.notes.part) is taken for one.
const tempSuffix = ".satchel.part"

// staleAge is how long a get's temporary file must have been left
// unwritten before another get may take it for stale: a lock held on
// another host of a network file system without shared locks is not seen
// here, but that get, alive, keeps writing its file.
const staleAge = 10 * time.Minute

// removeStaleTemps removes the temporary files (.base.<digits>.satchel.part)
// that gets killed outright (SIGKILL, a power loss) left in dir, each only
// if it has not been written for staleAge and no live get holds its lock.
func removeStaleTemps(dir, base string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.Type().IsRegular() && isTempName(e.Name(), base) {
			removeStale(filepath.Join(dir, e.Name()), time.Now().Add(-staleAge))
		}
	}
}

// isTempName reports whether name is that of a temporary file os.CreateTemp
// made for base (see createTemp): the random part is decimal digits.
func isTempName(name, base string) bool {
	prefix := "." + base + "."
	if !strings.HasPrefix(name, prefix) || !strings.HasSuffix(name, tempSuffix) || len(name) <= len(prefix)+len(tempSuffix) {
		return false
	}
	for _, c := range name[len(prefix) : len(name)-len(tempSuffix)] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
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
