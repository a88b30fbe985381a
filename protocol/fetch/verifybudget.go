package fetch

import (
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/internal/debtbucket"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// The verification budget. A ranged GET of a block not verified within
// VerifiedFor reads and hashes the whole block (up to 2 MiB) to send what
// may be one byte; a peer walking many blocks that way would make the
// provider read its disk a million times faster than it sends. So each peer
// has a token bucket of bytes such reads may cost beyond what they send:
// it holds up to the burst and refills at the rate. A verifying read is
// made only while the bucket is above zero, which it leaves less the most
// a read may cost (MaxGetBytes), held before it reads so that concurrent
// GETs cannot pass on the same tokens; once read, what it did not cost
// (its block's size less the bytes sent is what it did) goes back. Past
// it, the GET is REFUSED: the peer reads the whole block (never charged:
// it sends what it reads) or waits. What a peer makes the provider read
// for ranges of blocks not verified lately is therefore at most
// burst + rate × time + MaxGetBytes more than what it is sent.
//
// Peer IDs are free, so behind the peers' buckets is one bucket of the
// node's (WithRangeVerifyNodeBudget), taken from and refunded the same way
// after the peer's: however many peers ask, the node reads at most
// burst + rate × time (plus one block per GET in flight) more than it sends
// for ranges. A GET the node's bucket refuses is REFUSED busy (its peer's
// bucket gets back what it held): read the whole block, or the range from
// another provider.
//
// The peers' buckets are a bucketRecord: when it is full of peers still
// refilling, a newcomer's GETs draw on its overflow bucket, shared with a
// 256th of the newcomers, rather than every newcomer being refused however
// the node's budget stood.

const (
	// DefaultRangeVerifyRate and DefaultRangeVerifyBurst are a peer's
	// verification budget (see WithRangeVerifyBudget): 4 MiB a second, 16
	// MiB at once.
	DefaultRangeVerifyRate  = 4 << 20
	DefaultRangeVerifyBurst = 16 << 20
	// DefaultRangeVerifyNodeRate and DefaultRangeVerifyNodeBurst are the
	// node's verification budget, all peers together (see
	// WithRangeVerifyNodeBudget): four peers' worth, 16 MiB a second and
	// 64 MiB at once.
	DefaultRangeVerifyNodeRate  = 4 * DefaultRangeVerifyRate
	DefaultRangeVerifyNodeBurst = 4 * DefaultRangeVerifyBurst
	// maxBudgetPeers bounds the keys whose buckets a bucketRecord
	// remembers; a bucket that has refilled is forgotten (a fresh one is
	// the same).
	maxBudgetPeers = 4096
)

// WithRangeVerifyBudget sets each peer's verification budget for ranged
// GETs of blocks not verified within VerifiedFor: rate bytes a second, burst
// bytes at once (defaults DefaultRangeVerifyRate, DefaultRangeVerifyBurst).
// A rate of 0 never refills. Non-positive bursts keep the default.
func WithRangeVerifyBudget(rate, burst int64) Option {
	return func(c *config) {
		if burst > 0 {
			c.verifyRate, c.verifyBurst = max(rate, 0), burst
		}
	}
}

// WithRangeVerifyNodeBudget sets the node's verification budget, which
// every peer's ranged GETs of blocks not verified within VerifiedFor draw
// on after their own (WithRangeVerifyBudget): rate bytes a second, burst
// bytes at once (defaults DefaultRangeVerifyNodeRate,
// DefaultRangeVerifyNodeBurst). A rate of 0 never refills. Non-positive
// bursts keep the default.
func WithRangeVerifyNodeBudget(rate, burst int64) Option {
	return func(c *config) {
		if burst > 0 {
			c.nodeRate, c.nodeBurst = max(rate, 0), burst
		}
	}
}

// verifyBudget holds the peers' buckets and the node's. Its lock makes a
// take from a peer's bucket and the node's one step.
type verifyBudget struct {
	now func() time.Time

	mu    sync.Mutex
	peers bucketRecord[peer.ID] // unbounded debt: a hold is refunded
	node  *debtbucket.Bucket
}

// verifyHold is the peer's bucket a take held tokens in (its own, or its
// overflow bucket), for refund; nil when it held none.
type verifyHold struct{ peer *debtbucket.Bucket }

// budgetVerdict is what take decides.
type budgetVerdict int

const (
	budgetTaken         budgetVerdict = iota
	budgetPeerSpent                   // the peer's own bucket
	budgetOverflowSpent               // the overflow bucket the peer shares with others
	budgetNodeSpent                   // the node's, all peers' together
)

func newVerifyBudget(rate, burst, nodeRate, nodeBurst int64) *verifyBudget {
	if burst <= 0 {
		rate, burst = DefaultRangeVerifyRate, DefaultRangeVerifyBurst
	}
	if nodeBurst <= 0 {
		nodeRate, nodeBurst = DefaultRangeVerifyNodeRate, DefaultRangeVerifyNodeBurst
	}
	return &verifyBudget{now: time.Now,
		peers: newBucketRecord[peer.ID](rate, burst), node: debtbucket.New(nodeRate, nodeBurst)}
}

// take takes n bytes (what a verifying read may cost at most) from p's
// bucket and then the node's, if each is above zero; a GET then gives
// back what its read did not cost (refund). Held before the read, so
// concurrent GETs cannot all pass on the same tokens: a bucket goes below
// zero by one hold per GET in flight at most. When the record of peers is
// full of peers still refilling, a peer not in it draws on its overflow
// bucket, and a GET that finds that spent is told so (budgetOverflowSpent,
// not its own). A GET the node refuses takes nothing from its peer. The hold
// says which bucket to refund.
func (v *verifyBudget) take(p peer.ID, n uint64) (budgetVerdict, verifyHold) {
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	b := v.peers.bucket(p, now)
	if !b.Allow(now) {
		if v.peers.m[p] != b {
			return budgetOverflowSpent, verifyHold{}
		}
		return budgetPeerSpent, verifyHold{}
	}
	if !v.node.Allow(now) {
		return budgetNodeSpent, verifyHold{}
	}
	b.Spend(now, int64(n))
	v.node.Spend(now, int64(n))
	return budgetTaken, verifyHold{peer: b}
}

// refund gives n bytes of h back to the peer's bucket it was taken from
// and to the node's.
func (v *verifyBudget) refund(h verifyHold, n uint64) {
	if n == 0 || h.peer == nil {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	now := v.now()
	h.peer.Refund(now, int64(n))
	v.node.Refund(now, int64(n))
}

// takeVerify takes a verifying read's budget for a ranged GET of c from
// remote, and returns its hold; or, when remote's budget or the node's is
// spent, counts the refusal and returns the reply refusing the GET. A GET
// it passes gives back what its read did not cost (budget.refund).
func (h *Handler) takeVerify(remote peer.ID, c cid.Cid) (verifyHold, *pb.FetchReply) {
	verdict, hold := h.budget.take(remote, MaxGetBytes)
	switch verdict {
	case budgetPeerSpent:
		h.metrics.verifyRefused.WithLabelValues("peer").Inc()
		return hold, &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED,
			Reason: fmt.Sprintf("%s was not verified lately and this peer's budget for reading whole blocks to serve ranges is spent; read the whole block (offset 0, length 0) or retry later", c)}
	case budgetOverflowSpent:
		// Not this peer's own bucket: one shared by hash with other peers
		// the provider has no room to track apart, which refills within
		// seconds.
		h.metrics.verifyRefused.WithLabelValues("overflow").Inc()
		return hold, &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Busy: true,
			Reason: fmt.Sprintf("provider busy: %s was not verified lately and the budget for reading whole blocks to serve ranges that this peer shares with other peers (the provider tracks too many to keep one each) is spent; read the whole block (offset 0, length 0), retry later, or read the range from another provider", c)}
	case budgetNodeSpent:
		h.metrics.verifyRefused.WithLabelValues("node").Inc()
		return hold, &pb.FetchReply{Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Busy: true,
			Reason: fmt.Sprintf("provider busy: %s was not verified lately and the provider's budget for reading whole blocks to serve ranges, shared by all peers, is spent; read the whole block (offset 0, length 0), or the range from another provider", c)}
	}
	return hold, nil
}
