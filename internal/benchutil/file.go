package benchutil

import (
	"bufio"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"testing"
)

// WriteRandomFile writes size pseudo-random bytes determined by seed to
// path. Every byte is drawn, so no two chunks of the file are equal: a
// provider holding a chunk already is not sent it again, and a file of
// repeated chunks would measure a fraction of its bytes.
//
// The file is synced before WriteRandomFile returns: left dirty, its pages
// are written back by the kernel tens of seconds later, in the middle of
// whatever the benchmark times then (a get writing its output to the same
// disk, say), competing for the disk and the CPU.
func WriteRandomFile(b testing.TB, path string, size int64, seed uint64) {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 4<<20)
	r := rand.New(rand.NewPCG(seed, 0x5a7c4e1))
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; off += int64(len(buf)) {
		for i := 0; i+8 <= len(buf); i += 8 {
			binary.LittleEndian.PutUint64(buf[i:], r.Uint64())
		}
		if _, err := w.Write(buf[:min(int64(len(buf)), size-off)]); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}
