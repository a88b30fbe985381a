package verify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

// ErrLyingEndpoint matches every *LieError: an answer or header that the
// validators did not sign.
var ErrLyingEndpoint = errors.New("chain endpoint answered what the validators did not sign")

// LieError names an endpoint whose answer failed verification, what it was
// about and why.
type LieError struct {
	Endpoint string
	Height   int64
	What     string
	Err      error
}

func (e *LieError) Error() string {
	ep := e.Endpoint
	if ep == "" {
		ep = "(unnamed)"
	}
	return fmt.Sprintf("chain endpoint %s: %s at height %d fails verification: %v; use another endpoint and tell its operator",
		ep, e.What, e.Height, e.Err)
}

// Unwrap returns the cause, unless it is the endpoint's own claim (a
// *chain.Error such as "not found"): an unproven claim must not match
// chain.ErrNotFound and the like under errors.Is, or a lying endpoint could
// make a caller act on an absence it never proved (a provider deleting what
// it was told is gone).
func (e *LieError) Unwrap() error {
	var ce *chain.Error
	if errors.As(e.Err, &ce) {
		return nil
	}
	return e.Err
}

// Is matches ErrLyingEndpoint.
func (e *LieError) Is(target error) bool { return target == ErrLyingEndpoint }

// DefaultTrustingPeriod is how long a verified header stays a valid
// starting point for verifying later ones.
const DefaultTrustingPeriod = 14 * 24 * time.Hour

// Option configures a Transport.
type Option func(*Transport)

// WithEndpoint names the endpoint in errors and logs (e.g. its URL).
func WithEndpoint(name string) Option { return func(t *Transport) { t.endpoint = name } }

// WithTrustingPeriod sets how long a verified header may start the
// verification of later ones (default DefaultTrustingPeriod).
func WithTrustingPeriod(d time.Duration) Option {
	return func(t *Transport) {
		if d > 0 {
			t.h.period = d
		}
	}
}

// WithClock sets the clock headers are checked against (default time.Now):
// a header is trusted only while younger than the trusting period, and a
// header from the future beyond a small drift is refused.
func WithClock(now func() time.Time) Option {
	return func(t *Transport) {
		if now != nil {
			t.h.now = now
		}
	}
}

// WithLogger sets the logger (default slog.Default() with
// component=chain/verify).
func WithLogger(l *slog.Logger) Option {
	return func(t *Transport) {
		if l != nil {
			t.log = l
		}
	}
}

// Transport is a chain.Transport whose every query answer is proven: it
// asks its inner transport for the query's proven reads (chain.QueryProven),
// verifies the header that signs their height with CometBFT's light client
// rules from its trust root, checks every proof against that header's app
// hash and answers from the proven reads alone. Submissions, events and
// heights pass through. Safe for concurrent use.
type Transport struct {
	inner    chain.Transport
	h        *headers
	endpoint string
	log      *slog.Logger

	mu        sync.Mutex
	minHeight int64 // no answer from below: the last committed submission, the last answer
}

var _ chain.Transport = (*Transport)(nil)

// New verifies the trust root through t (which must also be a Source) and
// returns the verifying transport. Closing it closes t.
func New(ctx context.Context, t chain.Transport, trust Trust, opts ...Option) (*Transport, error) {
	src, ok := t.(Source)
	if !ok {
		return nil, fmt.Errorf("verify: transport %T gives no signed headers (it is not a verify.Source)", t)
	}
	v := &Transport{
		inner: t,
		h:     &headers{src: src, period: DefaultTrustingPeriod, drift: 10 * time.Second, now: time.Now},
		log:   slog.Default().With("component", "chain/verify"),
	}
	for _, o := range opts {
		o(v)
	}
	root := trust.Height
	if trust.Validators != nil {
		root = 1
	}
	if err := t.WaitForHeight(ctx, root); err != nil {
		return nil, fmt.Errorf("verify: wait for the trusted block %d: %w", root, err)
	}
	if err := v.h.init(ctx, trust); err != nil {
		return nil, v.named(err)
	}
	return v, nil
}

// Latest returns the highest header v has verified (at first its trust
// root). Saved, it starts a later Transport (Header.Trust) after the
// configured root has grown older than the trusting period.
func (v *Transport) Latest() Header { return headerOf(v.h.latest()) }

// TrustingPeriod returns how long a verified header may start the
// verification of later ones.
func (v *Transport) TrustingPeriod() time.Duration { return v.h.period }

// named adds the endpoint's name to a LieError.
func (v *Transport) named(err error) error {
	var le *LieError
	if errors.As(err, &le) && le.Endpoint == "" {
		le.Endpoint = v.endpoint
		v.log.Warn("chain endpoint failed verification", "endpoint", v.endpoint, "height", le.Height, "what", le.What, "err", le.Err)
	}
	return err
}

// Query answers a query from proven reads (see Transport).
func (v *Transport) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	b, err := v.query(ctx, path, data)
	return b, v.named(err)
}

func (v *Transport) query(ctx context.Context, path string, data []byte) ([]byte, error) {
	if path == chain.QueryProven {
		return nil, chain.Errorf(chain.ErrInvalid, "verify: ask the plain query; the transport proves it")
	}
	v.mu.Lock()
	min := v.minHeight
	v.mu.Unlock()
	req, err := json.Marshal(chain.ProvenQuery{Path: path, Data: data, MinHeight: min})
	if err != nil {
		return nil, err
	}
	if min > 0 {
		if err := v.inner.WaitForHeight(ctx, min); err != nil {
			return nil, err
		}
	}
	b, err := v.inner.Query(ctx, chain.QueryProven, req)
	var ce *chain.Error
	if errors.As(err, &ce) && ce.Code != chain.CodeInvalid && ce.Code != chain.CodeInternal && ce.Code != chain.CodeUnknownQuery {
		// A node answers a proven query that fails (say, an unknown bag)
		// with the reads that show it, never with a bare error.
		return nil, &LieError{What: "a proven answer to " + path, Err: fmt.Errorf("a bare error without proof: %v", err)}
	}
	if err != nil {
		return nil, err
	}
	var w state.Witness
	if err := json.Unmarshal(b, &w); err != nil {
		return nil, &LieError{What: "a proven answer to " + path, Err: err}
	}
	switch {
	case w.Path != path || string(w.Data) != string(data):
		return nil, &LieError{Height: w.Height, What: "a proven answer to " + path, Err: fmt.Errorf("it answers %s instead", w.Path)}
	case w.Height < min:
		return nil, &LieError{Height: w.Height, What: "a proven answer to " + path, Err: fmt.Errorf("it is older than height %d, seen already", min)}
	}
	// The app hash of height h is in the header of block h+1.
	if err := v.inner.WaitForHeight(ctx, w.Height+1); err != nil {
		return nil, err
	}
	hdr, err := v.h.header(ctx, w.Height+1)
	if err != nil {
		return nil, err
	}
	ans, err := state.VerifyWitness(w, hdr.AppHash)
	if errors.Is(err, state.ErrBadProof) {
		return nil, &LieError{Height: w.Height, What: "the answer to " + path, Err: err}
	}
	if err != nil {
		return nil, err
	}
	v.raise(w.Height)
	return ans, nil
}

// raise moves the lowest acceptable answer height up to h.
func (v *Transport) raise(h int64) {
	v.mu.Lock()
	v.minHeight = max(v.minHeight, h)
	v.mu.Unlock()
}

// BroadcastTx submits through the inner transport; later answers are at
// the transaction's height or above, so the submitter reads its writes.
func (v *Transport) BroadcastTx(ctx context.Context, tx []byte) (chain.Committed, error) {
	c, err := v.inner.BroadcastTx(ctx, tx)
	if c.Height > 0 {
		v.raise(c.Height)
	}
	return c, err
}

// BlockEvents passes through (events are not proven).
func (v *Transport) BlockEvents(ctx context.Context, height int64) (chain.BlockEvents, error) {
	return v.inner.BlockEvents(ctx, height)
}

// LatestHeight passes through.
func (v *Transport) LatestHeight(ctx context.Context) (int64, error) {
	return v.inner.LatestHeight(ctx)
}

// WaitForHeight passes through.
func (v *Transport) WaitForHeight(ctx context.Context, h int64) error {
	return v.inner.WaitForHeight(ctx, h)
}

// Close closes the inner transport.
func (v *Transport) Close() error { return v.inner.Close() }
