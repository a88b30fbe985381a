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
// has not released.
//
// A streamed upload's contract (object 0) does not reserve its whole size
// at CONSIGN: it reserves a window (ReserveWindow, or the size if smaller)
// and the reservation grows as the upload's bytes arrive (Grow, asked for
// each chunk), always one window ahead of them, up to the contract's size.
// The part not yet received is given back after IdleRelease without a
// chunk (the grant itself lives on, and its next chunk grows it again). So
// a member that consigns and uploads nothing holds one window per open
// grant, not the object, and at most MaxOpenPerMember grants (MaxOpenGrants
// on the node): a further one is refused ErrBusy. A MIRROR's contract (a
// registered object, copied by the sync) reserves its whole size.
//
// A reservation lasts until its upload is bound (Release, called at BIND:
// the voucher charged the registered object) or, at most, as long as the
// grant it opened: GrantTTL (or WithGrantTTL) after the CONSIGN or after
// the last chunk the provider took into the grant's session (Extend), and
// never past the contract's End.
//
// What is checked: the whole object must fit the room when offered and
// consigned (the voucher's free bytes less every open reservation, the
// free disk less every reservation's bytes not yet received), so an
// upload rarely runs out mid-way; every growth must fit it too. And no
// member holds more than its share of the room left: the bytes a member
// has reserved and not received may reach 1/MemberRoomShare of the room
// the other members' reservations leave (a member with nothing else
// reserved may always take one window), so four members, or forty, never
// hold all of it. Counters are kept as reservations change; nothing scans
// every reservation but the lapse sweep, which runs only when one may have
// lapsed. A contract for more bytes than the chain's largest data object
// is refused (ErrMalformed): no object it could bind to is accepted.
type Ledger struct {
	dir       Directory
	bucket    chain.StorageBucketID
	free      func() (uint64, error)
	ttl       time.Duration
	share     uint64
	window    uint64
	idle      time.Duration
	perMember int
	maxOpen   int

	mu       sync.Mutex
	reserved map[ID]*reservation
	use      usage
	members  map[chain.MemberID]*usage
	sweepAt  time.Time // no reservation lapses or idles before it
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

// WithMemberShare sets the share of the room left by the other members
// that one member's reserved, not yet received, bytes may hold: 1/n of it
// (default MemberRoomShare). n of 1 or less lets one member reserve all of
// it.
func WithMemberShare(n int) LedgerOption {
	return func(l *Ledger) { l.share = uint64(max(n, 1)) }
}

// WithReserveWindow sets how far ahead of an upload's received bytes its
// reservation reaches (default ReserveWindow). Zero keeps the default.
func WithReserveWindow(n uint64) LedgerOption {
	return func(l *Ledger) {
		if n > 0 {
			l.window = n
		}
	}
}

// WithIdleRelease sets how long an upload may send no chunk before the
// part of its reservation not yet received is given back (default
// IdleRelease). Zero or negative keeps the default.
func WithIdleRelease(d time.Duration) LedgerOption {
	return func(l *Ledger) {
		if d > 0 {
			l.idle = d
		}
	}
}

// WithOpenLimits sets how many reservations one member (default
// MaxOpenPerMember) and the node (default MaxOpenGrants) may hold open.
// Zero or negative keeps a default.
func WithOpenLimits(perMember, total int) LedgerOption {
	return func(l *Ledger) {
		if perMember > 0 {
			l.perMember = perMember
		}
		if total > 0 {
			l.maxOpen = total
		}
	}
}

// ParamsReader is what a Ledger's Directory may also implement
// (*chain.Client does): the chain's governance parameters, whose limits
// give the largest data object a contract may be for. Without it, a
// contract's size is checked against the room alone.
type ParamsReader interface {
	Params(ctx context.Context) (chain.Params, error)
}

// NewLedger returns a Ledger for bucket. freeDisk reports the bytes the
// provider can still write; nil means the disk is not checked.
func NewLedger(dir Directory, bucket chain.StorageBucketID, freeDisk func() (uint64, error), opts ...LedgerOption) *Ledger {
	l := &Ledger{dir: dir, bucket: bucket, free: freeDisk, ttl: GrantTTL, share: MemberRoomShare,
		window: ReserveWindow, idle: IdleRelease, perMember: MaxOpenPerMember, maxOpen: MaxOpenGrants,
		reserved: make(map[ID]*reservation), members: make(map[chain.MemberID]*usage), now: time.Now}
	for _, o := range opts {
		o(l)
	}
	return l
}

// Fits implements Room: c would be reserved now.
func (l *Ledger) Fits(ctx context.Context, c *Contract) error {
	v, err := l.view(ctx, c)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
	return l.admitLocked(c, v, l.reserved[c.ID])
}

// Reserve implements Room. Reserving the same contract again (a repeated
// CONSIGN) returns a new grant without counting its room twice, and
// without reading the chain when its size did not grow; a reservation
// under an ID already reserved with another size is checked against the
// room the others leave.
func (l *Ledger) Reserve(ctx context.Context, c *Contract) (Grant, error) {
	if g, ok := l.reserveAgain(c); ok {
		return g, nil
	}
	// The room is read before the lock: a chain read does not hold up
	// Grow and Extend, and so the chunks of every upload.
	v, err := l.view(ctx, c)
	if err != nil {
		return Grant{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
	old := l.reserved[c.ID]
	if old == nil || c.Size > old.size {
		if err := l.admitLocked(c, v, old); err != nil {
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
	l.sweepLocked(l.now())
	if old := l.reserved[c.ID]; old == nil || c.Size > old.size {
		return Grant{}, false
	}
	return l.grantLocked(c), true
}

// grantLocked opens a grant of c and (re)places its reservation, which
// lasts as long as the grant or a grant opened before under the same ID
// that slid past it, whichever ends later. Call with l.mu.
func (l *Ledger) grantLocked(c *Contract) Grant {
	now := l.now()
	g := Grant{ContractID: c.ID, Bag: c.Bag, MaxBytes: c.Size, Expires: l.grantEnd(now, c.End)}
	r := &reservation{size: c.Size, held: l.firstWindow(c), member: c.Member, until: g.Expires,
		end: c.End, active: now, upload: c.Object == 0}
	if old := l.reserved[c.ID]; old != nil {
		l.remove(c.ID, old)
		r.until = maxTime(r.until, old.until)
		r.held = max(r.held, min(old.held, r.size))
		r.recv = min(old.recv, r.held)
	}
	l.add(c.ID, r)
	_, _ = rand.Read(g.Session[:])
	return g
}

// firstWindow is what c reserves at CONSIGN: a window of an upload, the
// whole of a registered object (a MIRROR's copy does not report its bytes).
func (l *Ledger) firstWindow(c *Contract) uint64 {
	if c.Object != 0 {
		return c.Size
	}
	return min(c.Size, l.window)
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
	return v, l.readRoom(ctx, &v)
}

// readRoom reads the bucket's voucher and the free disk into v.
func (l *Ledger) readRoom(ctx context.Context, v *roomView) error {
	b, err := l.dir.StorageBucket(ctx, l.bucket)
	if err != nil {
		return fmt.Errorf("contracts: read storage bucket %d: %w", l.bucket, err)
	}
	v.voucher = b.Voucher
	if l.free != nil {
		if v.free, err = l.free(); err != nil {
			return fmt.Errorf("contracts: free disk: %w", err)
		}
		v.hasFree = true
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

// Release returns a contract's room, once its upload is accepted on chain
// (and charged to the voucher) or given up.
func (l *Ledger) Release(id ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.reserved[id]; r != nil {
		l.remove(id, r)
	}
}

// Reserved returns the bytes reserved by open contracts.
func (l *Ledger) Reserved() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
	return l.use.held
}

// Pending returns the bytes open contracts reserve and their uploads hold
// not yet on disk: what the free disk does not show yet, and so what every
// reservation's room is checked against beside it.
func (l *Ledger) Pending() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
	return l.use.pending
}

// Open returns the number of open reservations: uploads not yet bound,
// dropped or lapsed, and MIRRORs within their grant time.
func (l *Ledger) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
	return l.use.open
}

// ReservedBy returns the bytes member's open contracts reserve.
func (l *Ledger) ReservedBy(member chain.MemberID) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweepLocked(l.now())
	if u := l.members[member]; u != nil {
		return u.held
	}
	return 0
}

// sub is a - b, or 0 when b > a.
func sub(a, b uint64) uint64 {
	if b > a {
		return 0
	}
	return a - b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
