package blockstore

import (
	"testing"
	"unsafe"
)

// TestStagingBufs: staging buffers are aligned for direct I/O and as long
// as asked; a record of up to 2 MiB is staged on a huge page's buffer
// while one is free (reused once handed back), and on the heap once all
// are taken or when it is larger.
func TestStagingBufs(t *testing.T) {
	f := newFileIO(true)
	n := int(recordLen(1 << 20))
	buf, done := f.stagingBuf(n)
	if !aligned(buf) || len(buf) != n {
		t.Fatalf("staging buffer of %d bytes, aligned %v; want %d, aligned", len(buf), aligned(buf), n)
	}
	done()
	if hugeStaging.free == nil {
		t.Skip("no huge pages on request here: every record is staged on the heap")
	}
	isHuge := func(b []byte) bool { return cap(b) == stagingHuge && uintptr(unsafe.Pointer(&b[0]))%stagingHuge == 0 }
	var dones []func()
	for i := range stagingHugeBufs + 1 {
		b, d := f.stagingBuf(64 << 10)
		if !aligned(b) || len(b) != 64<<10 {
			t.Fatalf("buffer %d: %d bytes, aligned %v", i, len(b), aligned(b))
		}
		// Other tests of the package may hold a few at once.
		if i == stagingHugeBufs && isHuge(b) {
			t.Fatalf("buffer %d is a huge one: more than %d handed out", i, stagingHugeBufs)
		}
		dones = append(dones, d)
	}
	for _, d := range dones {
		d()
	}
	b, d := f.stagingBuf(64 << 10)
	defer d()
	if !isHuge(b) {
		t.Fatal("a huge buffer handed back was not used again")
	}
	big, bd := f.stagingBuf(stagingHuge + ioAlign)
	defer bd()
	if isHuge(big) || !aligned(big) || len(big) != stagingHuge+ioAlign {
		t.Fatalf("a record larger than a huge page: %d bytes, aligned %v, huge %v", len(big), aligned(big), isHuge(big))
	}
}

// holdHugeStaging takes every huge staging buffer until the test ends, so
// that records are staged from the heap's pool (a test slipping a buffer
// into it).
func holdHugeStaging(t *testing.T) {
	t.Helper()
	hugeStaging.once.Do(func() { hugeStaging.free = mapHugeBufs(stagingHugeBufs, stagingHuge) })
	for {
		select {
		case b := <-hugeStaging.free:
			t.Cleanup(func() { hugeStaging.free <- b })
		default:
			return
		}
	}
}
