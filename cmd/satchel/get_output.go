package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
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
func writeOutput(path string, fill func(io.Writer) (int64, error)) (n int64, direct bool, err error) {
	fi, err := os.Stat(path) // follows symbolic links: /dev/stdout is one
	switch {
	case errors.Is(err, fs.ErrNotExist):
		n, err = writeAtomic(path, fill)
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
		n, err = writeAtomic(target, fill)
		return n, false, err
	}
	n, err = writeDirect(path, fill)
	return n, true, err
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
// in the same directory, which is synced and renamed to path only when
// fill succeeded, so path never holds a partial object. Use it only for a
// regular file or a new path (see writeOutput).
func writeAtomic(path string, fill func(io.Writer) (int64, error)) (int64, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+".*.part")
	if err != nil {
		return 0, fmt.Errorf("cannot write %s: %w", path, err)
	}
	tmp := f.Name()
	n, err := fill(f)
	if err == nil {
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
	return n, nil
}
