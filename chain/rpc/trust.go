package rpc

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/verify"
)

// ErrNoTrustRoot means a remote chain endpoint was to be read with proofs
// but nothing says whom to trust: no genesis file, no trusted header.
var ErrNoTrustRoot = errors.New("no trust root for proven reads of the chain endpoint")

// Trust says how the answers of a remote chain endpoint are trusted. The
// default is proven reads: every answer is checked against headers signed
// by the validators (package chain/verify), from a root given by a genesis
// file or a trusted header, as CometBFT's light client starts. Only
// TrustRPC reads the endpoint's answers as they come.
type Trust struct {
	// Genesis is the network's genesis file (config/genesis.json in any
	// node's home, the same on every node): its validators are trusted.
	Genesis string
	// Height and Hash name a header trusted instead of the genesis
	// validators (the hash in hex, as `satchel chain status` prints it on
	// a node the operator trusts). A network older than the trusting
	// period needs one: a header older than that starts no verification.
	Height int64
	Hash   string
	// TrustRPC turns proofs off: the endpoint is believed. For a node the
	// operator runs and trusts, or an in-process node reading its own
	// state.
	TrustRPC bool
	// TrustingPeriod is how long a verified header (the root, a saved one)
	// may start verification; 0 is verify.DefaultTrustingPeriod (14 days).
	// Keep it below the time a validator removed from the set could still
	// sign headers others would believe.
	TrustingPeriod time.Duration
	// Saved is a header verified before from the same root (Proven.Saved,
	// kept by the caller, e.g. in a file): Prove starts from it instead
	// when it is newer than the root, so proven reads go on after the
	// root has grown older than the trusting period, as CometBFT's light
	// client starts from its trusted store. It is checked as any trusted
	// header; one that does not fit (verified from another root or chain,
	// expired, not on the endpoint's chain) is skipped with a logged
	// warning and the root is used.
	Saved *SavedRoot
}

// SavedRoot is a verified header kept to start a later verification
// (Trust.Saved), and the trust root it was verified from.
type SavedRoot struct {
	verify.Header
	// Root names the root the header descends from (a genesis's chain ID
	// and validators, or a trusted header's height and hash): a saved
	// header is used only with the root it came from.
	Root string `json:"root"`
}

// rootID names a trust root for SavedRoot.Root.
func rootID(root verify.Trust) string {
	if root.Validators != nil {
		return fmt.Sprintf("genesis %s %X", root.ChainID, root.Validators.Hash())
	}
	return fmt.Sprintf("header %d %X", root.Height, root.Hash)
}

// Root returns the verify.Trust the fields name: the trusted header when
// Height is set, else the genesis file's validators. It fails with
// ErrNoTrustRoot when neither is given.
func (t Trust) Root() (verify.Trust, error) {
	switch {
	case t.Height > 0 || t.Hash != "":
		if t.Height <= 0 || t.Hash == "" {
			return verify.Trust{}, fmt.Errorf("trusted header: give both its height and its hash (height %d, hash %q)", t.Height, t.Hash)
		}
		h, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(t.Hash), "0x"))
		if err != nil || len(h) != 32 {
			return verify.Trust{}, fmt.Errorf("trusted header hash %q: want 64 hex digits, as `satchel chain status` prints it", t.Hash)
		}
		return verify.Trust{Height: t.Height, Hash: h}, nil
	case t.Genesis != "":
		return verify.TrustGenesisFile(t.Genesis)
	}
	return verify.Trust{}, fmt.Errorf("%w: give the network's genesis file or a trusted header's height and hash, or trust the endpoint explicitly", ErrNoTrustRoot)
}

// String says how answers are trusted, for logs and errors.
func (t Trust) String() string {
	switch {
	case t.TrustRPC:
		return "trusted endpoint (answers not proven)"
	case t.Height > 0:
		return fmt.Sprintf("proven from trusted header %d", t.Height)
	case t.Genesis != "":
		return "proven from the validators of " + t.Genesis
	}
	return "no trust root"
}

// openConfig is what OpenOptions set.
type openConfig struct {
	log    *slog.Logger
	verify []verify.Option
}

// OpenOption configures Open and Prove.
type OpenOption func(*openConfig)

// WithLogger sets the logger verification failures are logged to.
func WithLogger(l *slog.Logger) OpenOption {
	return func(c *openConfig) {
		if l != nil {
			c.log = l
		}
	}
}

// WithVerifyOptions passes options to verify.New (e.g. a trusting period).
func WithVerifyOptions(opts ...verify.Option) OpenOption {
	return func(c *openConfig) { c.verify = append(c.verify, opts...) }
}

// Open dials the node at rpcURL and, unless trust.TrustRPC, returns a
// transport whose every query answer is proven against headers the
// validators signed (Prove). An endpoint whose trust root or answers fail
// verification is refused with an error naming it (errors.Is with
// verify.ErrLyingEndpoint). Closing the transport closes the connection.
func Open(ctx context.Context, rpcURL string, trust Trust, opts ...OpenOption) (chain.Transport, error) {
	// Check the trust root before dialing, so a missing one is the error.
	if !trust.TrustRPC {
		if _, err := trust.Root(); err != nil {
			return nil, fmt.Errorf("chain endpoint %s: %w", rpcURL, err)
		}
	}
	t, err := Dial(rpcURL)
	if err != nil {
		return nil, err
	}
	pt, err := Prove(ctx, t, rpcURL, trust, opts...)
	if err != nil {
		t.Close()
		return nil, err
	}
	return pt, nil
}

// Prove wraps t, which must give signed headers (a verify.Source, as the
// transports of this package and chain/node do), so every query answer is
// proven; endpoint names it in errors and logs. With trust.TrustRPC it
// returns t as it is. It verifies the trust root through t first.
func Prove(ctx context.Context, t chain.Transport, endpoint string, trust Trust, opts ...OpenOption) (chain.Transport, error) {
	if trust.TrustRPC {
		return t, nil
	}
	c := openConfig{log: slog.Default()}
	for _, o := range opts {
		o(&c)
	}
	if trust.TrustingPeriod < 0 {
		return nil, fmt.Errorf("chain endpoint %s: trusting period %v: want a positive duration, or 0 for the default (%v)", endpoint, trust.TrustingPeriod, verify.DefaultTrustingPeriod)
	}
	root, err := trust.Root()
	if err != nil {
		return nil, fmt.Errorf("chain endpoint %s: %w", endpoint, err)
	}
	vopts := []verify.Option{verify.WithEndpoint(endpoint), verify.WithLogger(c.log.With("component", "chain/verify"))}
	if trust.TrustingPeriod > 0 {
		vopts = append(vopts, verify.WithTrustingPeriod(trust.TrustingPeriod))
	}
	vopts = append(vopts, c.verify...)
	id := rootID(root)
	vt := fromSaved(ctx, t, trust.Saved, root, id, c.log, vopts)
	saved := vt != nil
	if vt == nil {
		if vt, err = verify.New(ctx, t, root, vopts...); err != nil {
			return nil, fmt.Errorf("proven reads of chain endpoint %s (%s): %w", endpoint, trust, err)
		}
	}
	p := &Proven{Transport: vt, inner: t, waits: newHeightWaits(t), root: id, fromSaved: saved}
	if h, err := t.LatestHeight(ctx); err == nil {
		p.fresh.Store(h)
	}
	return p, nil
}

// fromSaved returns a verifying transport started from the saved header s,
// or nil (with a logged warning when s was unfit) when the root is to be
// used: s is absent, not newer than the root, from another root, or fails.
func fromSaved(ctx context.Context, t chain.Transport, s *SavedRoot, root verify.Trust, id string, log *slog.Logger, vopts []verify.Option) *verify.Transport {
	if s == nil {
		return nil
	}
	rootHeight := root.Height
	if root.Validators != nil {
		rootHeight = 1
	}
	skip := func(why string) *verify.Transport {
		log.Warn("not starting proven reads from the saved trusted header; starting from the configured root",
			"component", "chain/rpc", "height", s.Height, "why", why)
		return nil
	}
	switch {
	case s.Root != id:
		return skip(fmt.Sprintf("it was verified from another trust root (%q), not the configured one (%q)", s.Root, id))
	case root.ChainID != "" && s.ChainID != root.ChainID:
		return skip(fmt.Sprintf("it is of chain %q, the root of chain %q", s.ChainID, root.ChainID))
	case s.Height <= rootHeight:
		return nil
	}
	// A node below the saved header (a chain started anew) would keep
	// verify.New waiting for it.
	head, err := t.LatestHeight(ctx)
	if err != nil {
		return nil // unreachable: the root's path reports it
	}
	if head < s.Height {
		return skip(fmt.Sprintf("the endpoint is at height %d, below it (a chain started anew?)", head))
	}
	vt, err := verify.New(ctx, t, s.Trust(), vopts...)
	if err != nil {
		return skip(err.Error())
	}
	return vt
}

// Proven is the transport Open and Prove return: a verify.Transport, whose
// answers are proven, with two adjustments for answers that trail the
// chain's head by a block (the one its last signed header covers):
//
//   - the first answer covers every block committed before Prove
//     returned: it waits, when needed, for the next block to be signed (on
//     an idle chain up to its empty-block interval, 1 s by default), so a
//     command reads what the one before it wrote (unless the read's context
//     says a block of lag is fine: AcceptLag);
//   - a not-found is asked once more after the next block, so what
//     another party's transaction has just committed is found (concurrent
//     reads waiting for one block share one poll of the node);
//   - an account's nonce (chain.QueryAccount) is read unproven, at the
//     head: it only numbers the reader's own transactions, a wrong one
//     makes a submission fail and nothing else, and one a block old would
//     sign a transaction that repeats the last.
type Proven struct {
	*verify.Transport
	inner chain.Transport
	// waits merges the waits for the next block (heightwait.go).
	waits *heightWaits
	// fresh is the head when Prove returned, until a query has waited for
	// the block after it (then 0).
	fresh atomic.Int64
	// root names the configured trust root (SavedRoot.Root).
	root string
	// fromSaved is whether verification started from Trust.Saved.
	fromSaved bool
}

// FromSaved reports whether p's verification started from the saved header
// it was given (Trust.Saved), not from the configured root.
func (p *Proven) FromSaved() bool { return p.fromSaved }

// Saved returns the highest header p has verified and the root it
// descends from: kept, it starts a later Prove (Trust.Saved) once the
// root is older than the trusting period.
func (p *Proven) Saved() SavedRoot {
	return SavedRoot{Header: p.Latest(), Root: p.root}
}

// lagKey marks a context whose reads accept an answer a block old.
type lagKey struct{}

// AcceptLag returns ctx marked so that Proven answers its reads from the
// state the last signed header covers without first waiting for the next
// block (up to the chain's empty-block interval): for reads of what does not
// change once written, such as the object a download names and whom to ask
// for it, where a block of lag costs nothing and the wait is most of a
// small command's time. A not-found is still asked again after the next
// block, so an object registered in the last block is found.
func AcceptLag(ctx context.Context) context.Context {
	return context.WithValue(ctx, lagKey{}, true)
}

// lagAccepted reports whether ctx was marked by AcceptLag.
func lagAccepted(ctx context.Context) bool {
	ok, _ := ctx.Value(lagKey{}).(bool)
	return ok
}

// Query answers from proven reads (see Proven).
func (p *Proven) Query(ctx context.Context, path string, data []byte) ([]byte, error) {
	if path == chain.QueryAccount {
		return p.inner.Query(ctx, path, data)
	}
	if h := p.fresh.Load(); h > 0 && !lagAccepted(ctx) {
		if err := p.waits.wait(ctx, h+1); err != nil {
			return nil, err
		}
		p.fresh.CompareAndSwap(h, 0)
	}
	b, err := p.Transport.Query(ctx, path, data)
	if !errors.Is(err, chain.ErrNotFound) {
		return b, err
	}
	h, herr := p.inner.LatestHeight(ctx)
	if herr != nil || p.waits.wait(ctx, h+1) != nil {
		return b, err
	}
	return p.Transport.Query(ctx, path, data)
}
