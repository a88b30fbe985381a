package contracts

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// uploadContract is an unsigned upload contract of member for size bytes:
// the Ledger reads only its ID, member, size, object and end.
func uploadContract(member chain.MemberID, size uint64) *Contract {
	return &Contract{ID: NewID(), Member: member, Terms: Terms{Size: size}}
}

// disk is a free-disk figure tests change as bytes land.
type disk struct {
	mu   sync.Mutex
	free uint64
}

func (d *disk) get() (uint64, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.free, nil
}

// reservedUpload is a ledger of bucket 1 (its voucher 10 objects, 4 GiB),
// the free disk read from freeDisk, made with opts, and member 1's upload
// of size reserved in it.
func reservedUpload(t *testing.T, size uint64, freeDisk func() (uint64, error), opts ...LedgerOption) (*Ledger, *Contract) {
	t.Helper()
	dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 4 << 30}}}
	l := NewLedger(dir, 1, freeDisk, opts...)
	c := uploadContract(1, size)
	if _, err := l.Reserve(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	return l, c
}

func (d *disk) set(n uint64) {
	d.mu.Lock()
	d.free = n
	d.mu.Unlock()
}

// TestLedgerGrowsWithUpload: a 2 GiB upload reserves one window at
// CONSIGN and its reservation stays one window ahead of its bytes as they
// land (the disk shrinking with them), to the whole object: an honest
// large upload never fails for room the provider has, and meanwhile
// another member still gets room.
func TestLedgerGrowsWithUpload(t *testing.T) {
	const size = 2 << 30
	d := &disk{free: 3 << 30}
	l, c := reservedUpload(t, size, d.get)
	ctx := context.Background()
	if n := l.Reserved(); n != ReserveWindow {
		t.Fatalf("a 2 GiB upload reserves %d at CONSIGN, want one window (%d)", n, ReserveWindow)
	}
	for received := uint64(1 << 20); received <= size; received += 1 << 20 {
		d.set(3<<30 - received)
		if err := l.Grow(ctx, c.ID, received, received-1<<20); err != nil {
			t.Fatalf("at %d of %d bytes: %v", received, size, err)
		}
		held := l.ReservedBy(1)
		if held < received || held > received+ReserveWindow {
			t.Fatalf("at %d bytes %d reserved; want between them and one window more", received, held)
		}
		if received == 1<<30 {
			if err := l.Fits(ctx, uploadContract(2, 100<<20)); err != nil {
				t.Fatalf("another member's 100 MiB halfway through: %v", err)
			}
		}
	}
	if n := l.Reserved(); n != size {
		t.Fatalf("%d reserved once every byte came, want %d", n, size)
	}
	if err := l.Grow(ctx, c.ID, size+1, size); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("a byte more than the contract: %v, want ErrNoRoom", err)
	}
	l.Release(c.ID)
	if n := l.Reserved(); n != 0 {
		t.Fatalf("%d reserved after BIND, want 0", n)
	}
}

// TestLedgerGrowRoomRunsOut: when the disk fills under an upload (other
// writes), its reservation stops growing; the bytes it holds are still
// taken, and the first byte past them is refused ErrNoRoom, naming what
// was received, with nothing else changed.
func TestLedgerGrowRoomRunsOut(t *testing.T) {
	d := &disk{free: 3 << 30}
	l, c := reservedUpload(t, 2<<30, d.get)
	ctx := context.Background()
	must(t, l.Grow(ctx, c.ID, 100<<20, 100<<20))
	d.set(200 << 20) // something else filled the disk
	must(t, l.Grow(ctx, c.ID, 200<<20, 200<<20))
	held := l.Reserved()
	if held != ReserveWindow {
		t.Fatalf("%d reserved, want the first window", held)
	}
	must(t, l.Grow(ctx, c.ID, held, held)) // what is held is taken
	d.set(0)                               // and the disk is full
	err := l.Grow(ctx, c.ID, held+1<<20, held)
	if !errors.Is(err, ErrNoRoom) || l.Reserved() != held {
		t.Fatalf("past the reservation with the disk full: %v, reserved %d; want ErrNoRoom and %d", err, l.Reserved(), held)
	}
	t.Logf("refused: %v", err)
	d.set(3 << 30)
	if err := l.Grow(ctx, c.ID, held+1<<20, held); err != nil || l.Reserved() != held+1<<20+ReserveWindow {
		t.Fatalf("with room again: %v, reserved %d", err, l.Reserved())
	}
}

// TestLedgerIdleRelease: an upload that sends no chunk for the idle time
// gives back the part of its reservation not received; its grant lives
// on, and its next chunk reserves a window again.
func TestLedgerIdleRelease(t *testing.T) {
	l, c := reservedUpload(t, 1<<30, nil, WithIdleRelease(time.Minute))
	ctx := context.Background()
	must(t, l.Grow(ctx, c.ID, 10<<20, 10<<20))
	if n := l.Reserved(); n != ReserveWindow {
		t.Fatalf("%d reserved, want one window", n)
	}
	start := time.Now()
	l.now = func() time.Time { return start.Add(2 * time.Minute) }
	if n := l.Reserved(); n != 10<<20 {
		t.Fatalf("%d reserved after two idle minutes, want the 10 MiB received", n)
	}
	must(t, l.Grow(ctx, c.ID, 20<<20, 20<<20))
	if n := l.Reserved(); n != 20<<20+ReserveWindow {
		t.Fatalf("%d reserved after the next chunk, want a window past its 20 MiB", n)
	}
	l.now = func() time.Time { return start.Add(2*time.Minute + GrantTTL + time.Second) }
	if err := l.Grow(ctx, c.ID, 21<<20, 21<<20); !errors.Is(err, ErrNotFound) || l.Reserved() != 0 {
		t.Fatalf("a chunk after the grant lapsed: %v, reserved %d; want ErrNotFound and 0", err, l.Reserved())
	}
}

// TestLedgerOpenLimits: one member holds at most its open reservations,
// the node at most its own; a release frees a slot.
func TestLedgerOpenLimits(t *testing.T) {
	dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 100, SizeLimit: 1 << 40}}}
	l := NewLedger(dir, 1, nil, WithOpenLimits(2, 3))
	ctx := context.Background()
	var first ID
	for i := range 2 {
		c := uploadContract(1, 1)
		if _, err := l.Reserve(ctx, c); err != nil {
			t.Fatalf("member 1's upload %d: %v", i, err)
		}
		first = c.ID
	}
	if _, err := l.Reserve(ctx, uploadContract(1, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("member 1's third open upload: %v, want ErrBusy", err)
	}
	if _, err := l.Reserve(ctx, uploadContract(2, 1)); err != nil {
		t.Fatalf("member 2's upload: %v", err)
	}
	if err := l.Fits(ctx, uploadContract(3, 1)); !errors.Is(err, ErrBusy) {
		t.Fatalf("a fourth open upload on the node: %v, want ErrBusy", err)
	}
	l.Release(first)
	if _, err := l.Reserve(ctx, uploadContract(3, 1)); err != nil {
		t.Fatalf("after a release: %v", err)
	}
}

// TestLedgerPendingStored: the bytes an upload's chunks in flight would
// add (asked, not stored yet) stay pending against the free disk: another
// member's upload that fits only if they were on disk is refused; once
// they are stored they stop being pending, and a chunk refused after it
// was asked for (never stored) never does.
func TestLedgerPendingStored(t *testing.T) {
	d := &disk{free: 512 << 20}
	l, c := reservedUpload(t, 400<<20, d.get, WithMemberShare(1))
	ctx := context.Background()
	// 200 MiB of chunks asked for, none on disk yet.
	must(t, l.Grow(ctx, c.ID, 200<<20, 0))
	if p := l.Pending(); p != l.Reserved() {
		t.Fatalf("%d pending with 200 MiB in flight and %d reserved, want all of it", p, l.Reserved())
	}
	// The disk still shows 512 MiB free, 400 of them reserved: a 300 MiB
	// upload does not fit.
	if err := l.Fits(ctx, uploadContract(2, 300<<20)); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("300 MiB beside 200 MiB in flight on 512 MiB free: %v, want ErrNoRoom", err)
	}
	// A 64 MiB chunk asked for next is refused (never stored): the
	// following chunk's request finds only the first 200 MiB stored.
	must(t, l.Grow(ctx, c.ID, 264<<20, 0))
	d.set(312 << 20)
	must(t, l.Grow(ctx, c.ID, 201<<20, 200<<20))
	if p, held := l.Pending(), l.Reserved(); p != held-200<<20 {
		t.Fatalf("%d pending of %d reserved with 200 MiB stored, want %d", p, held, held-200<<20)
	}
}

// TestLedgerReceivedAtLanding: a chunk counts as received once it landed
// (Received), not only when the next chunk is asked; an upload that then
// idles shrinks to every byte it stored, its last chunk included, so when
// it resumes it reserves a window past them and not its last chunk again.
// A later report of fewer bytes, or of a reservation not held, changes
// nothing.
func TestLedgerReceivedAtLanding(t *testing.T) {
	l, c := reservedUpload(t, 1<<30, nil, WithIdleRelease(time.Minute))
	ctx := context.Background()
	const chunk = 1 << 20
	for i := uint64(0); i < 10; i++ {
		must(t, l.Grow(ctx, c.ID, (i+1)*chunk, i*chunk)) // asked: the chunks before it stored
		l.Received(c.ID, (i+1)*chunk)                    // landed
		if p, want := l.Pending(), l.Reserved()-(i+1)*chunk; p != want {
			t.Fatalf("after chunk %d landed %d pending, want %d", i, p, want)
		}
	}
	l.Received(c.ID, 3*chunk) // a late report
	l.Received(NewID(), 5*chunk)
	if p, want := l.Pending(), l.Reserved()-10*chunk; p != want {
		t.Fatalf("after a late report %d pending, want %d", p, want)
	}
	start := time.Now()
	l.now = func() time.Time { return start.Add(2 * time.Minute) }
	if n := l.Reserved(); n != 10*chunk {
		t.Fatalf("%d reserved after two idle minutes, want the 10 chunks stored", n)
	}
	must(t, l.Grow(ctx, c.ID, 11*chunk, 10*chunk)) // resumed
	if n, p := l.Reserved(), l.Pending(); n != 11*chunk+ReserveWindow || p != chunk+ReserveWindow {
		t.Fatalf("resumed: %d reserved, %d pending; want a window past the next chunk, %d, none of it stored before", n, p, 11*chunk+ReserveWindow)
	}
}
