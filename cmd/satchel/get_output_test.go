package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func fillWith(data []byte) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := w.Write(data)
		return int64(n), err
	}
}

// onlyEntry fails unless dir holds exactly name (no temporary file left).
func onlyEntry(t *testing.T, dir, name string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != name {
		t.Fatalf("directory holds %v; want only %s", entries, name)
	}
}

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
	n, direct, err := writeOutput(fifo, fillWith(data))
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
	n, direct, err := writeOutput(dev, fillWith([]byte("gone")))
	if err != nil || n != 4 || !direct {
		t.Fatalf("writeOutput = %d, direct %v, %v", n, direct, err)
	}
	fi, err := os.Lstat(dev)
	if err != nil || fi.Mode().Type() != fs.ModeDevice|fs.ModeCharDevice {
		t.Fatalf("after get, %s is %v (%v); want it still a character device", dev, fi.Mode(), err)
	}
	onlyEntry(t, dir, "null")
}

// TestGetOutputRegularFiles: regular files keep the atomic path, through a
// symbolic link too (the link stays), and a directory is refused.
func TestGetOutputRegularFiles(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("target", link); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("provider went away")
	if _, direct, err := writeOutput(link, func(w io.Writer) (int64, error) {
		_, _ = w.Write([]byte("partial"))
		return 7, boom
	}); !errors.Is(err, boom) || direct {
		t.Fatalf("failed fill: direct %v, %v", direct, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Fatalf("a failed get changed the file: %q", b)
	}
	if _, direct, err := writeOutput(link, fillWith([]byte("new"))); err != nil || direct {
		t.Fatalf("direct %v, %v", direct, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Fatalf("target holds %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	fresh := filepath.Join(dir, "fresh")
	if _, direct, err := writeOutput(fresh, fillWith([]byte("x"))); err != nil || direct {
		t.Fatalf("new file: direct %v, %v", direct, err)
	}
	if _, _, err := writeOutput(dir, fillWith([]byte("x"))); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("a directory: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.part")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}
