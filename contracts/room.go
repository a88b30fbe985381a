package contracts

import (
	"context"
	"crypto/rand"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// Ledger is a Room that counts reservations against the bucket's voucher on
// chain and the provider's free disk, across every contract it reserved and
// has not released. A reservation lasts until its upload is bound (the
// Responder's Release, called by the store handler at BIND: the voucher
// charged the registered object) or, at most, as long as the grant it
// opened: GrantTTL (or WithGrantTTL) after the CONSIGN or after the last
// chunk the provider took into the grant's session (Extend), and never
// past the contract's End. A provider takes a streamed upload session only
// under a live grant, and keeps the session's unbound chunks no longer
// than the grant (the store handler caps the session's expiry at the
// grant's end), so the open reservations are its open contracts and the
// bytes of their sessions.
//
// No member holds more than its share of the room: a contract is refused
// (ErrNoRoom) when its member's open reservations and its own size would
// exceed 1/MemberRoomShare of the room (the voucher's free bytes or the
// free disk, whichever is less), unless they stay within the chain's
// largest data object, so one large honest upload still fits. A contract
// for more bytes than the chain's largest data object is refused
// (ErrMalformed): no object it could bind to is accepted on chain.
type Ledger struct {
	dir    Directory
	bucket chain.StorageBucketID
	free   func() (uint64, error)
	ttl    time.Duration
	share  uint64

	mu       sync.Mutex
	reserved map[ID]reservation
	now      func() time.Time

	// largest caches the chain's largest data object, read at largestAt:
	// every proposal answered and every CONSIGN asks it.
	largestMu sync.Mutex
	largest   uint64
	largestAt time.Time
}

// paramsTTL is how long a Ledger trusts the chain's largest data object
// (a governance parameter, rarely changed) before it reads it again.
const paramsTTL = 10 * time.Second

// reservation is the room one contract of member holds until its upload is
// bound or its grant lapses.
type reservation struct {
	size   uint64
	member chain.MemberID
	until  time.Time
	end    time.Time // the contract's end: no grant of it outlasts it
}

// RoomExtender is what a Room may also implement to make a grant's
// reservation slide with its upload (*Ledger does): Extend is asked for
// each chunk a provider takes into the grant's session, so an upload that
// takes longer than one grant TTL, but never pauses that long, keeps its
// room and its session.
type RoomExtender interface {
	// Extend makes contract id's live reservation last until max(its end,
	// now + the grant TTL), no later than the contract's End, and returns
	// its end; false when no live reservation is held for id.
	Extend(id ID) (until time.Time, ok bool)
}

// LedgerOption configures a Ledger.
type LedgerOption func(*Ledger)

// WithGrantTTL sets how long the grants the Ledger opens stay valid after
// their CONSIGN or their session's last chunk, and so how long an idle
// reservation and its upload session's unbound chunks last (default
// GrantTTL). Zero or negative keeps the default.
func WithGrantTTL(d time.Duration) LedgerOption {
	return func(l *Ledger) {
		if d > 0 {
			l.ttl = d
		}
	}
}

// WithMemberShare sets the share of the room one member's open
// reservations may hold: 1/n of it, or the chain's largest data object if
// that is more (default MemberRoomShare). n of 1 or less lets one member
// reserve all of it.
func WithMemberShare(n int) LedgerOption {
	return func(l *Ledger) { l.share = uint64(max(n, 1)) }
}

// ParamsReader is what a Ledger's Directory may also implement
// (*chain.Client does): the chain's governance parameters, whose limits
// give the largest data object a contract may be for. Without it, a
// contract's size is checked against the room alone and a member's share
// has no floor.
type ParamsReader interface {
	Params(ctx context.Context) (chain.Params, error)
}

// NewLedger returns a Ledger for bucket. freeDisk reports the bytes the
// provider can still write; nil means the disk is not checked.
func NewLedger(dir Directory, bucket chain.StorageBucketID, freeDisk func() (uint64, error), opts ...LedgerOption) *Ledger {
	l := &Ledger{dir: dir, bucket: bucket, free: freeDisk, ttl: GrantTTL, share: MemberRoomShare,
		reserved: make(map[ID]reservation), now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Fits implements Room.
func (l *Ledger) Fits(ctx context.Context, c *Contract) error {
	v, err := l.view(ctx, c)
	if err != nil {
		return err
	}
	l.mu.Lock()
	total, mine := l.openLocked(c.Member, nil)
	l.mu.Unlock()
	return l.fits(c, v, total, mine)
}

// roomView is what c's room is made of, read from the chain and the disk
// before the Ledger's lock is taken, so that no chain read holds up the
// chunks whose grants Extend slides meanwhile.
type roomView struct {
	largest uint64 // the chain's largest data object; 0 when unknown
	voucher chain.Voucher
	free    uint64 // the free disk, when hasFree
	hasFree bool
}

// view reads c's room; a contract larger than the chain's largest data
// object is refused (ErrMalformed) before the bucket is read.
func (l *Ledger) view(ctx context.Context, c *Contract) (roomView, error) {
	var v roomView
	var err error
	if v.largest, err = l.largestObject(ctx); err != nil {
		return v, err
	}
	if v.largest > 0 && c.Size > v.largest {
		return v, fmt.Errorf("%w: contract for %d bytes; the chain takes data objects of at most %d bytes, so split the upload into objects of at most that size",
			ErrMalformed, c.Size, v.largest)
	}
	b, err := l.dir.StorageBucket(ctx, l.bucket)
	if err != nil {
		return v, fmt.Errorf("contracts: read storage bucket %d: %w", l.bucket, err)
	}
	v.voucher = b.Voucher
	if l.free != nil {
		if v.free, err = l.free(); err != nil {
			return v, fmt.Errorf("contracts: free disk: %w", err)
		}
		v.hasFree = true
	}
	return v, nil
}

// fits checks c against the room rv: reserved bytes are held by open
// contracts, mine of them by c's member.
func (l *Ledger) fits(c *Contract, rv roomView, reserved, mine uint64) error {
	room := uint64(math.MaxUint64)
	v := rv.voucher
	if c.Object == 0 {
		if reserved+c.Size < reserved || !v.Room(1, reserved+c.Size) {
			return fmt.Errorf("%w: bucket %d voucher: %d of %d bytes used, %d reserved by open contracts, %d more asked; ask the storage lead to raise its limit",
				ErrNoRoom, l.bucket, v.SizeUsed, v.SizeLimit, reserved, c.Size)
		}
		room = sub(v.SizeLimit, v.SizeUsed)
	}
	if rv.hasFree {
		free := rv.free
		if free < reserved || free-reserved < c.Size {
			return fmt.Errorf("%w: %d bytes free on disk, %d reserved by open contracts, %d more asked",
				ErrNoRoom, free, reserved, c.Size)
		}
		room = min(room, free)
	}
	return l.memberFits(c, room, mine, rv.largest)
}

// memberFits checks that c's member, holding mine reserved bytes, may
// reserve c's size too: at most 1/share of room, or largest if more.
func (l *Ledger) memberFits(c *Contract, room, mine, largest uint64) error {
	if l.share <= 1 || room == math.MaxUint64 {
		return nil
	}
	limit := max(room/l.share, largest)
	if mine+c.Size < mine || mine+c.Size > limit {
		return fmt.Errorf("%w: member %d holds %d bytes reserved by open contracts and asks %d more; one member may hold at most %d (1/%d of the %d bytes of room, or the chain's largest data object); bind or drop its uploads first",
			ErrNoRoom, c.Member, mine, c.Size, limit, l.share, room)
	}
	return nil
}

// largestObject returns the chain's largest data object (read at most
// every paramsTTL), 0 when the Directory does not say.
func (l *Ledger) largestObject(ctx context.Context) (uint64, error) {
	pr, ok := l.dir.(ParamsReader)
	if !ok {
		return 0, nil
	}
	now := l.now()
	l.largestMu.Lock()
	if !l.largestAt.IsZero() && now.Sub(l.largestAt) < paramsTTL {
		defer l.largestMu.Unlock()
		return l.largest, nil
	}
	l.largestMu.Unlock()
	p, err := pr.Params(ctx)
	if err != nil {
		return 0, fmt.Errorf("contracts: read chain parameters: %w", err)
	}
	l.largestMu.Lock()
	l.largest, l.largestAt = p.Limits.MaxDataObjectSize, now
	l.largestMu.Unlock()
	return p.Limits.MaxDataObjectSize, nil
}

// Reserve implements Room. Reserving the same contract again (a repeated
// CONSIGN) returns a new grant without counting its room twice, and
// without reading the chain when its size did not grow; a reservation
// under an ID already reserved with another size counts only the
// difference, checked against the room left.
func (l *Ledger) Reserve(ctx context.Context, c *Contract) (Grant, error) {
	if g, ok := l.reserveAgain(c); ok {
		return g, nil
	}
	// The room is read before the lock: a chain read does not hold up
	// Extend, and so the chunks of every upload.
	v, err := l.view(ctx, c)
	if err != nil {
		return Grant{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	others, mine := l.openLocked(c.Member, &c.ID)
	if old, had := l.reserved[c.ID]; !had || c.Size > old.size {
		if err := l.fits(c, v, others, mine); err != nil {
			return Grant{}, err
		}
	}
	return l.grantLocked(c), nil
}

// reserveAgain grants c again, without reading the chain, when it is
// reserved already with at least its size.
func (l *Ledger) reserveAgain(c *Contract) (Grant, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.openLocked(c.Member, nil)
	if old, had := l.reserved[c.ID]; !had || c.Size > old.size {
		return Grant{}, false
	}
	return l.grantLocked(c), true
}

// grantLocked opens a grant of c and (re)places its reservation, which
// lasts as long as the grant or a grant opened before under the same ID
// that slid past it, whichever ends later. Call with l.mu.
func (l *Ledger) grantLocked(c *Contract) Grant {
	g := Grant{ContractID: c.ID, Bag: c.Bag, MaxBytes: c.Size, Expires: l.grantEnd(l.now(), c.End)}
	until := g.Expires
	if old, had := l.reserved[c.ID]; had && old.until.After(until) {
		until = old.until
	}
	l.reserved[c.ID] = reservation{size: c.Size, member: c.Member, until: until, end: c.End}
	_, _ = rand.Read(g.Session[:])
	return g
}

// grantEnd is when a grant opened, or slid, at now ends: one grant TTL
// later, and no later than end, its contract's end (when set).
func (l *Ledger) grantEnd(now, end time.Time) time.Time {
	until := now.Add(l.ttl)
	if !end.IsZero() && end.Before(until) {
		return end
	}
	return until
}

// Extend implements RoomExtender: it slides contract id's reservation, while
// its grant is live, to max(its end, now + the grant TTL), no later than
// the contract's End. It only updates the reservation in memory (two map
// operations under the Ledger's lock), so it is cheap enough for every
// chunk. The Ledger keeps nothing on disk: after a restart no reservation
// and no grant is open, the chunks of a session the provider no longer
// counts are refused, and the block store removes the session at its
// expiry, which was never later than its grant's end.
func (l *Ledger) Extend(id ID) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r, ok := l.reserved[id]
	now := l.now()
	if !ok || now.After(r.until) {
		return time.Time{}, false
	}
	if u := l.grantEnd(now, r.end); u.After(r.until) {
		r.until = u
		l.reserved[id] = r
	}
	return r.until, true
}

// sub is a - b, or 0 when b > a.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

// openLocked drops the reservations whose grant lapsed and returns the
// bytes the others reserve, mine of them by member; the reservation of
// except, when given, is not counted. Call with l.mu.
func (l *Ledger) openLocked(member chain.MemberID, except *ID) (total, mine uint64) {
	now := l.now()
	for id, r := range l.reserved {
		switch {
		case now.After(r.until):
			delete(l.reserved, id)
		case except != nil && id == *except:
		default:
			total += r.size
			if r.member == member {
				mine += r.size
			}
		}
	}
	return total, mine
}

// Release returns a contract's room, once its upload is accepted on chain
// (and charged to the voucher) or given up.
func (l *Ledger) Release(id ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.reserved, id)
}

// Reserved returns the bytes reserved by open contracts.
func (l *Ledger) Reserved() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	total, _ := l.openLocked(0, nil)
	return total
}

// ReservedBy returns the bytes member's open contracts reserve.
func (l *Ledger) ReservedBy(member chain.MemberID) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, mine := l.openLocked(member, nil)
	return mine
}
