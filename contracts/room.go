package contracts

import (
	"context"
	"crypto/rand"
	"fmt"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// Ledger is a Room that counts reservations against the bucket's voucher on
// chain and the provider's free disk, across every contract it reserved and
// has not released. A reservation lasts until its upload is bound (the
// Responder's Release, called by the store handler at BIND: the voucher
// charged the registered object) or, at most, as long as the grant it
// opened (GrantTTL): a provider takes a streamed upload session only under
// a live grant, so the open reservations are its open contracts and
// sessions.
type Ledger struct {
	dir    Directory
	bucket chain.StorageBucketID
	free   func() (uint64, error)

	mu       sync.Mutex
	reserved map[ID]reservation
	total    uint64
	now      func() time.Time
}

// reservation is the room one contract holds until its upload is bound or
// its grant lapses.
type reservation struct {
	size  uint64
	until time.Time
}

// NewLedger returns a Ledger for bucket. freeDisk reports the bytes the
// provider can still write; nil means the disk is not checked.
func NewLedger(dir Directory, bucket chain.StorageBucketID, freeDisk func() (uint64, error)) *Ledger {
	return &Ledger{dir: dir, bucket: bucket, free: freeDisk, reserved: make(map[ID]reservation), now: time.Now}
}

// Fits implements Room.
func (l *Ledger) Fits(ctx context.Context, c *Contract) error {
	l.mu.Lock()
	l.pruneLocked()
	total := l.total
	l.mu.Unlock()
	return l.fits(ctx, c, total)
}

func (l *Ledger) fits(ctx context.Context, c *Contract, reserved uint64) error {
	b, err := l.dir.StorageBucket(ctx, l.bucket)
	if err != nil {
		return fmt.Errorf("contracts: read storage bucket %d: %w", l.bucket, err)
	}
	v := b.Voucher
	if c.Object == 0 && (reserved+c.Size < reserved || !v.Room(1, reserved+c.Size)) {
		return fmt.Errorf("%w: bucket %d voucher: %d of %d bytes used, %d reserved by open contracts, %d more asked; ask the storage lead to raise its limit",
			ErrNoRoom, l.bucket, v.SizeUsed, v.SizeLimit, reserved, c.Size)
	}
	if l.free != nil {
		free, err := l.free()
		if err != nil {
			return fmt.Errorf("contracts: free disk: %w", err)
		}
		if free < reserved || free-reserved < c.Size {
			return fmt.Errorf("%w: %d bytes free on disk, %d reserved by open contracts, %d more asked",
				ErrNoRoom, free, reserved, c.Size)
		}
	}
	return nil
}

// Reserve implements Room. Reserving the same contract again (a repeated
// CONSIGN) returns a new grant without counting its room twice; a
// reservation under an ID already reserved with another size counts only
// the difference, checked against the room left.
func (l *Ledger) Reserve(ctx context.Context, c *Contract) (Grant, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked()
	g := Grant{ContractID: c.ID, Bag: c.Bag, MaxBytes: c.Size, Expires: l.now().Add(GrantTTL)}
	old, had := l.reserved[c.ID]
	others := l.total
	if had {
		others = sub(l.total, old.size)
	}
	if !had || c.Size > old.size {
		if err := l.fits(ctx, c, others); err != nil {
			return Grant{}, err
		}
	}
	l.total = others + c.Size
	l.reserved[c.ID] = reservation{size: c.Size, until: g.Expires}
	_, _ = rand.Read(g.Session[:])
	return g, nil
}

// sub is a - b, or 0 when b > a: the total never wraps around.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// pruneLocked drops the reservations whose grant lapsed. Call with l.mu.
func (l *Ledger) pruneLocked() {
	now := l.now()
	for id, r := range l.reserved {
		if now.After(r.until) {
			l.total = sub(l.total, r.size)
			delete(l.reserved, id)
		}
	}
}

// Release returns a contract's room, once its upload is accepted on chain
// (and charged to the voucher) or given up.
func (l *Ledger) Release(id ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total = sub(l.total, l.reserved[id].size)
	delete(l.reserved, id)
}

// Reserved returns the bytes reserved by open contracts.
func (l *Ledger) Reserved() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.pruneLocked()
	return l.total
}
