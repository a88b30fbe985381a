package verify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	cmtbytes "github.com/cometbft/cometbft/libs/bytes"
	"github.com/cometbft/cometbft/light"
	"github.com/cometbft/cometbft/types"
)

// Source gives the signed headers and validator sets a Transport checks
// answers against. The transports of chain/node implement it; so must the
// RPC transport of any other package.
type Source interface {
	// LightBlock returns the header of the block at height, the commit
	// that signs it and the validator set of that height.
	LightBlock(ctx context.Context, height int64) (*types.LightBlock, error)
}

// Trust is where verification starts: either the genesis validator set
// (Validators with ChainID: the header of block 1 is trusted when they
// signed it) or a header the operator trusts (Height and Hash, from a
// source it trusts, e.g. its own validator's `satchel chain status`).
type Trust struct {
	ChainID    string
	Validators *types.ValidatorSet
	Height     int64
	Hash       []byte
}

// TrustGenesisFile trusts the validators of a CometBFT genesis file (the
// network's genesis.json, the same on every node).
func TrustGenesisFile(path string) (Trust, error) {
	doc, err := types.GenesisDocFromFile(path)
	if err != nil {
		return Trust{}, fmt.Errorf("trust genesis: %w", err)
	}
	vals := make([]*types.Validator, len(doc.Validators))
	for i, v := range doc.Validators {
		vals[i] = types.NewValidator(v.PubKey, v.Power)
	}
	set := types.NewValidatorSet(vals)
	if err := set.ValidateBasic(); err != nil {
		return Trust{}, fmt.Errorf("trust genesis %s: validator set: %w", path, err)
	}
	return Trust{ChainID: doc.ChainID, Validators: set}, nil
}

// keepHeaders bounds how many verified headers a Transport keeps (besides
// its trust root): verification starts from the highest kept one below a
// target.
const keepHeaders = 256

// headers verifies signed headers with CometBFT's light client rules: a
// header next to a trusted one must be signed by +2/3 of the validators the
// trusted one named; a header further on by +1/3 of the trusted validators
// and +2/3 of its own. When validators changed too much for a skip, the gap
// is bisected.
type headers struct {
	src     Source
	chainID string
	period  time.Duration
	drift   time.Duration
	now     func() time.Time

	mu      sync.Mutex
	root    *types.LightBlock
	trusted []*types.LightBlock // by height, above root
}

// init fetches and checks the trust root.
func (h *headers) init(ctx context.Context, trust Trust) error {
	height := trust.Height
	if trust.Validators != nil {
		height = 1
	}
	lb, err := h.src.LightBlock(ctx, height)
	if err != nil {
		return fmt.Errorf("trust root: %w", err)
	}
	if h.chainID == "" {
		h.chainID = trust.ChainID
	}
	if h.chainID == "" && lb.SignedHeader != nil && lb.Header != nil {
		h.chainID = lb.ChainID
	}
	if err := lb.ValidateBasic(h.chainID); err != nil {
		return &LieError{Height: height, What: "the trusted header", Err: err}
	}
	if lb.Height != height {
		return &LieError{Height: height, What: "the trusted header", Err: fmt.Errorf("asked for height %d, got %d", height, lb.Height)}
	}
	switch {
	case trust.Validators != nil:
		if !bytes.Equal(lb.ValidatorSet.Hash(), trust.Validators.Hash()) {
			return &LieError{Height: 1, What: "the genesis validators", Err: errors.New("block 1 names other validators than the genesis")}
		}
		if err := trust.Validators.VerifyCommitLight(h.chainID, lb.Commit.BlockID, lb.Height, lb.Commit); err != nil {
			return &LieError{Height: 1, What: "block 1", Err: err}
		}
	case len(trust.Hash) > 0:
		if !bytes.Equal(lb.Hash(), trust.Hash) {
			return &LieError{Height: height, What: "the trusted header", Err: fmt.Errorf("hash %X, trusted %X", lb.Hash(), trust.Hash)}
		}
	default:
		return errors.New("trust root: give the genesis validators or a trusted header's height and hash")
	}
	// Checked here, as light.Verify checks every anchor, so an expired
	// root is named before any answer is asked for.
	if now := h.now(); !lb.Time.Add(h.period).After(now) {
		return &ExpiredError{Height: lb.Height, Time: lb.Time, Period: h.period}
	}
	h.root = lb
	return nil
}

// latest is the highest verified header.
func (h *headers) latest() *types.LightBlock {
	h.mu.Lock()
	defer h.mu.Unlock()
	if n := len(h.trusted); n > 0 {
		return h.trusted[n-1]
	}
	return h.root
}

// header returns the verified header at height.
func (h *headers) header(ctx context.Context, height int64) (*types.SignedHeader, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	lb, err := h.verifyTo(ctx, height, 0)
	if err != nil {
		return nil, err
	}
	return lb.SignedHeader, nil
}

// maxBisections bounds the bisection depth (2^32 blocks).
const maxBisections = 32

func (h *headers) verifyTo(ctx context.Context, height int64, depth int) (*types.LightBlock, error) {
	anchor := h.anchor(height)
	if anchor == nil {
		return nil, fmt.Errorf("header %d is below the trust root %d; trust an older header", height, h.root.Height)
	}
	if anchor.Height == height {
		return anchor, nil
	}
	lb, err := h.src.LightBlock(ctx, height)
	if err != nil {
		return nil, fmt.Errorf("signed header %d: %w", height, err)
	}
	if err := lb.ValidateBasic(h.chainID); err != nil || lb.Height != height {
		if err == nil {
			err = fmt.Errorf("asked for height %d, got %d", height, lb.Height)
		}
		return nil, &LieError{Height: height, What: "a signed header", Err: err}
	}
	err = light.Verify(anchor.SignedHeader, anchor.ValidatorSet, lb.SignedHeader, lb.ValidatorSet,
		h.period, h.now(), h.drift, light.DefaultTrustLevel)
	var cant light.ErrNewValSetCantBeTrusted
	switch {
	case err == nil:
	case errors.As(err, &cant) && depth < maxBisections:
		// Too much of the validator set changed for one skip: verify the
		// middle first, then skip from there.
		if _, err := h.verifyTo(ctx, anchor.Height+(height-anchor.Height)/2, depth+1); err != nil {
			return nil, err
		}
		return h.verifyTo(ctx, height, depth+1)
	case errors.As(err, new(light.ErrOldHeaderExpired)):
		return nil, fmt.Errorf("header %d: %w", height, &ExpiredError{Height: anchor.Height, Time: anchor.Time, Period: h.period})
	default:
		return nil, &LieError{Height: height, What: "a signed header", Err: err}
	}
	h.keep(lb)
	return lb, nil
}

// anchor is the highest trusted block at or below height.
func (h *headers) anchor(height int64) *types.LightBlock {
	i := sort.Search(len(h.trusted), func(i int) bool { return h.trusted[i].Height > height })
	if i > 0 {
		return h.trusted[i-1]
	}
	if h.root.Height <= height {
		return h.root
	}
	return nil
}

func (h *headers) keep(lb *types.LightBlock) {
	i := sort.Search(len(h.trusted), func(i int) bool { return h.trusted[i].Height >= lb.Height })
	if i < len(h.trusted) && h.trusted[i].Height == lb.Height {
		return
	}
	h.trusted = append(h.trusted, nil)
	copy(h.trusted[i+1:], h.trusted[i:])
	h.trusted[i] = lb
	if len(h.trusted) > keepHeaders {
		h.trusted = h.trusted[len(h.trusted)-keepHeaders:]
	}
}

// ErrTrustExpired matches every *ExpiredError: the header verification
// would start from is older than the trusting period.
var ErrTrustExpired = errors.New("trusted header older than the trusting period")

// ExpiredError names the trusted header that is too old to start
// verification from: CometBFT's light client rules trust no header older
// than the trusting period (the validators may have unbonded since, and
// nothing would punish them for signing another history).
type ExpiredError struct {
	Height int64
	Time   time.Time
	Period time.Duration
}

func (e *ExpiredError) Error() string {
	return fmt.Sprintf("the trusted header at height %d (%s) is older than the trusting period (%s), so no verification can start from it; "+
		"trust a recent header instead: its height and hash from a node you trust",
		e.Height, e.Time.UTC().Format(time.RFC3339), period(e.Period))
}

// period formats a trusting period, in days when it is whole days.
func period(d time.Duration) string {
	const day = 24 * time.Hour
	if d >= day && d%day == 0 {
		return fmt.Sprintf("%d days", d/day)
	}
	return d.String()
}

// Is matches ErrTrustExpired.
func (e *ExpiredError) Is(target error) bool { return target == ErrTrustExpired }

// Header is a header a Transport has verified: enough to start a later
// Transport from (Trust) while it is younger than the trusting period, as
// CometBFT's light client keeps its last verified header in its trusted
// store.
type Header struct {
	ChainID string            `json:"chainID"`
	Height  int64             `json:"height"`
	Hash    cmtbytes.HexBytes `json:"hash"`
	Time    time.Time         `json:"time"`
}

// Trust returns the trust root that starts verification from h. New checks
// it as any trusted header: the endpoint's header at h.Height must have
// h.Hash and h.ChainID, and be younger than the trusting period.
func (h Header) Trust() Trust {
	return Trust{ChainID: h.ChainID, Height: h.Height, Hash: h.Hash}
}

func headerOf(lb *types.LightBlock) Header {
	return Header{ChainID: lb.ChainID, Height: lb.Height, Hash: lb.Hash(), Time: lb.Time}
}
