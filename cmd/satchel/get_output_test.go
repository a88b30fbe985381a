package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func fillWith(data []byte) func(io.Writer) (int64, error) {
	return func(w io.Writer) (int64, error) {
		n, err := w.Write(data)
		return int64(n), err
	}
}

// onlyEntry fails unless dir holds exactly name (no temporary file left).
func onlyEntry(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if !slices.Equal(got, names) {
		t.Fatalf("directory holds %v; want only %v", got, names)
	}
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
	if _, direct, err := writeOutput(link, false, 0, func(w io.Writer) (int64, error) {
		_, _ = w.Write([]byte("partial"))
		return 7, boom
	}); !errors.Is(err, boom) || direct {
		t.Fatalf("failed fill: direct %v, %v", direct, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "old" {
		t.Fatalf("a failed get changed the file: %q", b)
	}
	if _, direct, err := writeOutput(link, false, 0, fillWith([]byte("new"))); err != nil || direct {
		t.Fatalf("direct %v, %v", direct, err)
	}
	if b, _ := os.ReadFile(target); string(b) != "new" {
		t.Fatalf("target holds %q", b)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode().Type() != fs.ModeSymlink {
		t.Fatalf("the link was replaced: %v %v", fi.Mode(), err)
	}
	fresh := filepath.Join(dir, "fresh")
	if _, direct, err := writeOutput(fresh, false, 0, fillWith([]byte("x"))); err != nil || direct {
		t.Fatalf("new file: direct %v, %v", direct, err)
	}
	if _, _, err := writeOutput(dir, false, 0, fillWith([]byte("x"))); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Fatalf("a directory: %v", err)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*.part")); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestGetFsyncFlushesInSteps: with --fsync and without direct I/O the
// output goes through a stepSyncer that hands every full step to the flusher while the rest is
// written, and the file lands whole under its name.
func TestGetFsyncFlushesInSteps(t *testing.T) {
	oldStep, oldDirect := syncStep, useDirectOutput
	syncStep, useDirectOutput = 8<<10, false
	t.Cleanup(func() { syncStep, useDirectOutput = oldStep, oldDirect })
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	data := bytes.Repeat([]byte("0123456789abcdef"), 10<<10) // 160 KiB: 20 steps
	var steps int64
	n, direct, err := writeOutput(path, true, 0, func(w io.Writer) (int64, error) {
		sw, ok := w.(*stepSyncer)
		if !ok {
			t.Fatalf("fsync output written through %T, not a stepSyncer", w)
		}
		var total int64
		for off := 0; off < len(data); off += 3000 { // writes not aligned to steps
			m, err := w.Write(data[off:min(off+3000, len(data))])
			total += int64(m)
			if err != nil {
				return total, err
			}
		}
		steps = sw.synced / syncStep
		return total, nil
	})
	if err != nil || direct || n != int64(len(data)) {
		t.Fatalf("writeOutput = %d, direct %v, %v", n, direct, err)
	}
	if want := int64(len(data)) / syncStep; steps != want {
		t.Fatalf("%d steps handed to the flusher, want %d", steps, want)
	}
	if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("file holds %d bytes (%v), want the %d written", len(got), err, len(data))
	}
	onlyEntry(t, dir, "out")

	// A failed fill with --fsync leaves nothing either.
	boom := errors.New("provider went away")
	if _, _, err := writeOutput(filepath.Join(dir, "other"), true, int64(len(data)), func(w io.Writer) (int64, error) {
		_, _ = w.Write(data)
		return int64(len(data)), boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failed fill: %v", err)
	}
	onlyEntry(t, dir, "out")
}

// TestGetOutputDirect: a regular output file is written with direct I/O
// through the aligned buffers, byte-exact whatever the sizes of the writes
// and of the file (padded, then cut to length; past every buffer the
// writer may hold), with or without --fsync, never holding more than
// directBuffers, and a failed get leaves nothing.
func TestGetOutputDirect(t *testing.T) {
	dir := t.TempDir()
	probe := filepath.Join(dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dw, err := openDirect(probe)
	if errors.Is(err, errNoDirect) {
		t.Skipf("%s refuses direct I/O", dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := dw.finish(); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(probe)
	for i, size := range []int{0, 1, directAlign - 1, directAlign, directBufSize - 1, directBufSize, 2*directBufSize + 12345, directBuffers*directBufSize + 3*directAlign + 1} {
		data := bytes.Repeat([]byte{byte(i + 1), 2, 3, 5, 7, 11, 13}, size/7+1)[:size]
		path := filepath.Join(dir, "out")
		var through io.Writer
		n, direct, err := writeOutput(path, i%2 == 1, int64(size), func(w io.Writer) (int64, error) {
			through = w
			var total int64
			for off := 0; off < len(data); {
				step := min(len(data)-off, 1+(off*7919)%(3<<20)) // uneven writes
				m, err := w.Write(data[off : off+step])
				total += int64(m)
				if err != nil {
					return total, err
				}
				off += step
			}
			return total, nil
		})
		if err != nil || direct || n != int64(size) {
			t.Fatalf("%d bytes: writeOutput = %d, direct %v, %v", size, n, direct, err)
		}
		dw, ok := through.(*directWriter)
		if !ok {
			t.Fatalf("%d bytes written through %T, not with direct I/O", size, through)
		}
		if dw.buffers < 1 || dw.buffers > directBuffers {
			t.Fatalf("%d bytes: the writer held %d buffers, want 1 to %d", size, dw.buffers, directBuffers)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: file holds %d bytes (%v), not what was written", size, len(got), err)
		}
		onlyEntry(t, dir, "out")
	}
	boom := errors.New("provider went away")
	if _, _, err := writeOutput(filepath.Join(dir, "other"), false, 3*directBufSize, func(w io.Writer) (int64, error) {
		_, _ = w.Write(make([]byte, directBufSize+5))
		return directBufSize + 5, boom
	}); !errors.Is(err, boom) {
		t.Fatalf("failed fill: %v", err)
	}
	onlyEntry(t, dir, "out")
}

// TestGetOutputNoRoom: a get whose size the file system cannot hold fails
// before anything is fetched (fill is never called), naming the size, and
// leaves nothing behind.
func TestGetOutputNoRoom(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("free space is looked at on Linux only")
	}
	dir := t.TempDir()
	const size = 1 << 62 // more than any disk holds
	called := false
	_, _, err := writeOutput(filepath.Join(dir, "out"), false, size, func(w io.Writer) (int64, error) {
		called = true
		return 0, nil
	})
	if err == nil || called {
		t.Fatalf("writeOutput of %d bytes: fill called %v, err %v; want an error before any fetch", int64(size), called, err)
	}
	if !strings.Contains(err.Error(), "no room for its 4611686018427387904 bytes") {
		t.Fatalf("error does not name the size: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("left behind: %v", entries)
	}
}
