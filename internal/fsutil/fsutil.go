// Package fsutil holds small file-system helpers the nodes and the command
// line share.
package fsutil

import (
	"os"
	"path/filepath"
)

// SyncDir fsyncs directory dir, so the entries created or renamed into it
// are durable. Callers that only do their best (not every platform can sync
// a directory) ignore its error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteFileAtomic replaces path with data durably: the bytes go to a
// temporary file in the same directory (created if missing), are fsynced,
// and the file is renamed over path, so a reader sees the old content or
// the new, never a part, and a crash leaves one of them. The directory is
// then synced (best effort, see SyncDir). On failure nothing is left
// behind. perm is the new file's mode.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeVia(path, data, perm, os.Rename)
}

// WriteFileNew creates path with data, failing with an error that wraps
// fs.ErrExist when path exists, even when another process creates it
// meanwhile: the bytes go to a temporary file in the same directory
// (created, mode 0700, if missing), are fsynced, and the file is linked
// into place, which never replaces a file; the directory is then synced
// (best effort, see SyncDir). Readers see no file or the whole of one, and
// nothing else is left behind. perm is the new file's mode.
func WriteFileNew(path string, data []byte, perm os.FileMode) error {
	return writeVia(path, data, perm, os.Link)
}

// writeVia writes data to a fsynced temporary file beside path (making the
// directory, 0700, if missing), puts it at path with place (a rename or a
// link), removes the temporary name and syncs the directory.
func writeVia(path string, data []byte, perm os.FileMode, place func(tmp, path string) error) error {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+base+".*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // gone already once renamed
	err = tmp.Chmod(perm)
	if err == nil {
		_, err = tmp.Write(data)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = place(tmp.Name(), path)
	}
	if err != nil {
		return err
	}
	_ = SyncDir(dir)
	return nil
}
