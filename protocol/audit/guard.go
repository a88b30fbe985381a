package audit

import (
	"fmt"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/satchel-net/satchel/internal/debtbucket"
	"github.com/satchel-net/satchel/internal/peerlimit"
)

// guard is a handler's defence: a per-challenger rate limit, a bound on
// challenges answered at once, the nonces already answered (known
// challengers' and strangers' in tables of their own), and the node-wide
// budget of bytes read to answer.
type guard struct {
	rate   float64
	slots  chan struct{}
	limits *peerlimit.Limits // per challenger, the maxChallengers most recently seen
	// budget is the bytes of chunks and proof blocks read (and hashed) to
	// answer, all challengers together: in debt by one block per answer
	// being prepared at most, then refusing until the debt is paid back.
	budget *debtbucket.Bucket

	// Nonces answered, challenger+nonce. Strangers (the challengers
	// WithKnownChallengers does not know) have a table of their own, so
	// fresh peer IDs cannot push out a known challenger's entries; each
	// table forgets its oldest entry when full rather than refusing.
	known, strangers *replayTable

	mu   sync.Mutex
	held int64 // chunk bytes held by answers being prepared or sent
}

func newGuard(perSecond float64, burst int, budget *debtbucket.Bucket) *guard {
	return &guard{
		rate:      perSecond,
		slots:     make(chan struct{}, MaxConcurrent),
		budget:    budget,
		limits:    peerlimit.New(perSecond, burst, maxChallengers),
		known:     newReplayTable(maxKnownNonces),
		strangers: newReplayTable(maxStrangerNonces),
	}
}

// admit takes a slot for a challenge from p at now, or says why not. The
// caller calls release when done. A challenger's limiter is kept while it is
// among the maxChallengers most recently seen, so a busy challenger stays
// limited however many others come and go.
func (g *guard) admit(p peer.ID, now time.Time) (release func(), err error) {
	if !g.limits.Allow(p, now) {
		return nil, fmt.Errorf("%w: challenger %s is over its rate of %.2g challenges a second; wait", ErrRefused, p, g.rate)
	}
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	default:
		return nil, fmt.Errorf("%w: %d challenges are being answered; try again later", ErrRefused, MaxConcurrent)
	}
}

// hold reserves n bytes of answer memory, or reports that maxAnswerMemory
// is taken.
func (g *guard) hold(n int64) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.held+n > maxAnswerMemory {
		return false
	}
	g.held += n
	return true
}

// unhold returns n bytes reserved by hold.
func (g *guard) unhold(n int64) {
	g.mu.Lock()
	g.held -= n
	g.mu.Unlock()
}

// fresh records p's nonce, failing with ErrReplay if it was seen within
// the replay window; stranger says which table it goes in. A table full of
// live nonces forgets its oldest: a challenger that replays a nonce
// forgotten so is answered again, which costs no more than a new nonce
// would (the rate and the byte share charge it the same), and only the
// challenger can send its own challenge (it must be the stream's peer).
func (g *guard) fresh(p peer.ID, stranger bool, nonce []byte, now time.Time) error {
	t := g.known
	if stranger {
		t = g.strangers
	}
	if !t.add(string(p)+string(nonce), now, now.Add(2*ClockWindow)) {
		return fmt.Errorf("%w: nonce %x from %s was answered already", ErrReplay, nonce, p)
	}
	return nil
}
