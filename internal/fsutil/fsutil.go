// Package fsutil holds small file-system helpers the nodes and the command
// line share.
package fsutil

import "os"

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
