//go:build !linux

package distributor

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
)

// canSyncDirs says a directory can be synced (fsync of its names): not on
// Windows, which syncs no directory handle.
const canSyncDirs = runtime.GOOS != "windows"

// syncTree writes to disk every file and directory under dir, one at a
// time (the systems other than Linux have no syncfs).
func syncTree(dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // evicted meanwhile
		}
		if err != nil {
			return err
		}
		if d.IsDir() && !canSyncDirs {
			return nil
		}
		f, err := os.Open(path)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		err = f.Sync()
		return errors.Join(err, f.Close())
	})
}
