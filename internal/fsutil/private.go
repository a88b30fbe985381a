package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
)

// CheckOwnerOnly returns an error when a secret file (a key) with mode is
// accessible by its group or other users, as ssh refuses such a key: whoever
// reads it can act as its owner. The error reads "PATH has permissions 0644
// ... run chmod 600 PATH", so callers prefix what the file is ("account key
// %w"). Windows has no Unix permission bits to check.
func CheckOwnerOnly(path string, mode fs.FileMode) error {
	if perm := mode.Perm(); runtime.GOOS != "windows" && perm&0o077 != 0 {
		return fmt.Errorf("%s has permissions %04o and is accessible by other users; "+
			"it must be readable by its owner only: run chmod 600 %s", path, perm, path)
	}
	return nil
}

// ReadPrivateFile reads the secret file at path (a key), refusing, before
// it reads a byte, one that is not a regular file, one its group or other
// users can access (CheckOwnerOnly) and one over limit bytes. Its errors
// begin with path, so callers prefix what the file is ("account key %w");
// a missing file's wraps fs.ErrNotExist.
func ReadPrivateFile(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, pathError(path, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, pathError(path, err)
	}
	if !info.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := CheckOwnerOnly(path, info.Mode()); err != nil {
		return nil, err
	}
	tooLarge := func(n int64) error {
		return fmt.Errorf("%s is %d bytes, too large to be a key file (at most %d)", path, n, limit)
	}
	if info.Size() > limit {
		return nil, tooLarge(info.Size())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1)) // the file may grow meanwhile
	if err != nil {
		return nil, pathError(path, err)
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(int64(len(b)))
	}
	return b, nil
}

// pathError is err, from an operation on path, as "PATH: what went wrong".
func pathError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("%s: %w", path, err)
}
