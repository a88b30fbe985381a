package audit

import (
	"crypto/sha256"
	"fmt"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"

	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// ResultWindow is how far a result's time (its challenge's time) may be
// from a node's clock, either way, for the node to take it: older or newer
// results are ignored. An auditor publishes a result at most AnswerTimeout
// after its challenge, so auditors' and providers' clocks must agree
// within ResultWindow − AnswerTimeout (30 s). The whole window (2 minutes)
// is gossipsub's seen-message time, so a result a node forgot it saw is
// stale; a ResultFilter also remembers every result it took while it is in
// the window.
const ResultWindow = time.Minute

// maxResultsSeen bounds the results a ResultFilter remembers; when it is
// full the oldest is forgotten first (gossipsub's seen cache still covers
// it). A node takes at most RelayBurst + RelayRate × 2 minutes (31,000)
// results about other bags in a window.
const maxResultsSeen = 1 << 16

// ResultFilter opens audit results for a topic validator and refuses those
// whose time is outside ResultWindow and those it took before: a signed
// result is valid forever, so any peer that heard one could send it again
// once gossipsub forgot it (FAIL results make a provider re-read the
// object).
type ResultFilter struct {
	seen *replayTable // sha256 of the signed result bytes
	now  func() time.Time
}

// ResultFilterOption configures NewResultFilter.
type ResultFilterOption func(*ResultFilter)

// WithResultClock sets the clock results' times are checked against
// (default time.Now).
func WithResultClock(now func() time.Time) ResultFilterOption {
	return func(f *ResultFilter) { f.now = now }
}

// NewResultFilter returns an empty filter.
func NewResultFilter(opts ...ResultFilterOption) *ResultFilter {
	f := &ResultFilter{seen: newReplayTable(maxResultsSeen), now: time.Now}
	for _, o := range opts {
		o(f)
	}
	return f
}

// ResultKey names one signed result (its hash) for ResultFilter.Take.
type ResultKey [sha256.Size]byte

// Open opens msg as OpenMessage does, and also fails, with an error
// wrapping ErrStale, when the result's time is outside ResultWindow of the
// filter's clock, or wrapping ErrReplay, when the filter took it before.
// With either of those it still returns the result, its signature
// verified, so the caller can judge the auditor. It does not take the
// result: the caller takes the key once it accepts it.
func (f *ResultFilter) Open(msg *pubsub.Message) (*pb.AuditResult, ResultKey, error) {
	r, body, err := openMessage(msg)
	if err != nil {
		return nil, ResultKey{}, err
	}
	now := f.now()
	at := time.UnixMilli(r.TimeUnixMs)
	if d := now.Sub(at); d > ResultWindow || d < -ResultWindow {
		return r, ResultKey{}, fmt.Errorf("%w: result of a challenge made at %s is outside the %s window around %s",
			ErrStale, at.UTC().Format(time.RFC3339), ResultWindow, now.UTC().Format(time.RFC3339))
	}
	key := ResultKey(sha256.Sum256(body))
	if f.seen.seen(string(key[:]), now) {
		return r, ResultKey{}, fmt.Errorf("%w: result of %s was heard already", ErrReplay, at.UTC().Format(time.RFC3339))
	}
	return r, key, nil
}

// Take remembers the result r, opened with key, until its time leaves the
// window. It reports false if it was taken already (two copies validated at
// once): the caller drops the second.
func (f *ResultFilter) Take(r *pb.AuditResult, key ResultKey) bool {
	until := time.UnixMilli(r.TimeUnixMs).Add(ResultWindow)
	return f.seen.add(string(key[:]), f.now(), until)
}
