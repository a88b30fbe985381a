//go:build unix

package main

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestGetToFIFOWritesStraight: `satchel get -o FIFO` writes into the FIFO
// and leaves it a FIFO; before, a temporary file was renamed over it.
func TestGetToFIFOWritesStraight(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "pipe")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Read-write: opening does not wait for a writer, and reads wait for
	// data instead of seeing end of file.
	r, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if err := r.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("satchel "), 1000) // under the pipe buffer
	n, direct, err := writeOutput(fifo, false, 0, fillWith(data))
	if err != nil || n != int64(len(data)) || !direct {
		t.Fatalf("writeOutput = %d, direct %v, %v", n, direct, err)
	}
	got := make([]byte, len(data))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read from the FIFO: %v (%q…)", err, got[:min(16, len(got))])
	}
	fi, err := os.Lstat(fifo)
	if err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
		t.Fatalf("after get, %s is %v (%v); want it still a FIFO", fifo, fi.Mode(), err)
	}
	onlyEntry(t, dir, "pipe")
}

// TestGetToCharDeviceWritesStraight makes a /dev/null-like character
// device in a temporary directory (root only) and gets into it: it stays a
// device.
func TestGetToCharDeviceWritesStraight(t *testing.T) {
	dir := t.TempDir()
	dev := filepath.Join(dir, "null")
	if err := syscall.Mknod(dev, syscall.S_IFCHR|0o666, int(1<<8|3)); err != nil {
		t.Skipf("mknod a character device (needs root): %v", err)
	}
	if f, err := os.OpenFile(dev, os.O_WRONLY, 0); err != nil {
		t.Skipf("device nodes cannot be opened here (nodev mount?): %v", err)
	} else {
		f.Close()
	}
	n, direct, err := writeOutput(dev, false, 0, fillWith([]byte("gone")))
	if err != nil || n != 4 || !direct {
		t.Fatalf("writeOutput = %d, direct %v, %v", n, direct, err)
	}
	fi, err := os.Lstat(dev)
	if err != nil || fi.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice {
		t.Fatalf("after get, %s is %v (%v); want it still a character device", dev, fi.Mode(), err)
	}
	onlyEntry(t, dir, "null")
}
