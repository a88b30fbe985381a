package blockstore

import (
	"errors"
	"syscall"
	"testing"
	"time"
)

// fakeSpace is a file system's room for records, read through space.
type fakeSpace struct {
	room  uint64
	err   error
	reads int
}

func (f *fakeSpace) space() (uint64, uint64, error) {
	f.reads++
	return f.room, 1 << 40, f.err
}

// TestHeadroomCached: far from the reserve the free space is read again
// only every refreshBytes written or refreshAge passed; near it, at every
// record; a record that would leave less than the reserve is refused with
// ENOSPC, and taken once the space is back; where the space cannot be read
// nothing is refused.
func TestHeadroomCached(t *testing.T) {
	const rec = 1<<20 + 4<<10
	fs := &fakeSpace{room: 1 << 30}
	h := newHeadroom(fs.space)
	now := time.Unix(1e9, 0)
	h.now = func() time.Time { return now }
	var n int
	for ; n*rec < 4*refreshBytes; n++ {
		if err := h.take(rec); err != nil {
			t.Fatalf("take %d: %v", n, err)
		}
	}
	if want := 4 + 1; fs.reads > want {
		t.Errorf("%d statfs for %d records of %d bytes far from the reserve, want at most %d", fs.reads, n, rec, want)
	}
	now = now.Add(refreshAge)
	fs.reads = 0
	if err := h.take(rec); err != nil || fs.reads != 1 {
		t.Errorf("take after refreshAge: %v, %d statfs; want one", err, fs.reads)
	}

	fs.room = IndexReserve + 2*rec // something else filled the disk
	now = now.Add(refreshAge)
	fs.reads = 0
	for i := range 2 {
		if err := h.take(rec); err != nil {
			t.Fatalf("take %d near the reserve: %v", i, err)
		}
	}
	if fs.reads != 2 {
		t.Errorf("%d statfs for 2 records near the reserve, want 2", fs.reads)
	}
	fs.room -= 2 * rec // the two records took it
	if err := h.take(rec); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("take at the reserve: %v; want ENOSPC", err)
	}
	fs.room += 10 * rec // something freed space
	if err := h.take(rec); err != nil {
		t.Fatalf("take once space is back: %v", err)
	}

	fs.err = errors.ErrUnsupported
	fs.room = 0
	if err := h.take(rec); err != nil {
		t.Errorf("take where the space cannot be read: %v", err)
	}
}
