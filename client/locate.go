package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
)

// candidate is one provider of a bag the client may talk to.
type candidate struct {
	peer   peer.ID
	addrs  []ma.Multiaddr
	bucket chain.StorageBucketID
	// named is set when the chain names the peer as the operator of one
	// of the bag's storage buckets; only those may store the bag's objects.
	named bool
	// session is the upload session of the storage contract consigned with
	// the peer for this upload (its grant), or nil: only a consigned
	// provider takes chunks before the object is registered.
	session []byte
}

// located is what the client found out about a bag's providers.
type located struct {
	bag chain.Bag
	// live are the providers connected, in the order of the bag's buckets
	// (then DHT-only peers, for reads).
	live []candidate
	// failed are the providers that could not be used, and why.
	failed []PeerError
	// unreached are the named providers among failed that could not be
	// connected to, as the chain read named them (reachAgain).
	unreached []candidate
	// buckets is the number of storage buckets of the bag.
	buckets int
	// unnamed are the buckets whose operator the chain did not name (not
	// active, or no node metadata published), with why in unnamedErrs.
	unnamed     []chain.StorageBucketID
	unnamedErrs []PeerError
}

// failures returns every provider or bucket that could not be used, and why.
func (l *located) failures() []PeerError {
	return append(slices.Clip(l.failed), l.unnamedErrs...)
}

// locate finds the providers of bag: the chain names its storage buckets and
// their operators' peer IDs and addresses; the DHT (FindProviders of the
// bag key) gives live addresses. It connects to them and returns the live
// ones. With dhtOnly, peers the DHT names but the chain does not are
// included too (reads verify every byte, so any holder will do).
func (c *Client) locate(ctx context.Context, bagID chain.BagID, dhtOnly bool) (*located, error) {
	bag, err := c.chain.Bag(ctx, bagID)
	if err != nil {
		return nil, explainChain("find providers", bagID, err)
	}
	loc := &located{bag: bag, buckets: len(bag.StorageBuckets)}
	named, err := c.operators(ctx, loc, bag.StorageBuckets)
	if err != nil {
		return nil, err
	}
	c.connectNamed(ctx, loc, named, dhtOnly)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return loc, nil
}

// nameAgain reads the buckets loc found no operator for again, fresh — one
// may have published its node in the last block, which a read a block
// behind did not see — and connects to the operators they name now; the
// providers loc reached or failed to reach are left as they are.
func (c *Client) nameAgain(ctx context.Context, loc *located) error {
	ids := loc.unnamed
	loc.unnamed, loc.unnamedErrs = nil, nil
	named, err := c.operators(ctx, loc, ids)
	if err != nil {
		return err
	}
	c.connectNamed(ctx, loc, named, false)
	return ctx.Err()
}

// reachAgain reads again the buckets of the named providers loc could not
// connect to, after the next block, and dials once more those whose
// bucket now names other addresses or another peer: a provider restarted
// on a new port publishes its new addresses in a block that a proven read
// sees only once the block after it is signed (a read answers from the
// state the latest signed header covers, a block behind the head; one
// marked rpc.AcceptLag does not even wait for that), and its old address
// refuses the dial. Those reached move from loc's failed providers to its
// live ones, and are returned. A bucket that names what failed already is
// not dialled again. A halted chain makes no block: the wait for one and
// the reads after it last at most the locate timeout, then reachAgain
// fails with an error matching errNoNewBlock.
func (c *Client) reachAgain(ctx context.Context, loc *located) ([]peer.ID, error) {
	if len(loc.unreached) == 0 {
		return nil, nil
	}
	bctx, bcancel := c.blockBound(ctx)
	defer bcancel()
	if err := c.nextBlock(bctx); err != nil {
		return nil, err
	}
	var retry []candidate
	for _, old := range loc.unreached {
		cand, moved, err := c.renamed(bctx, old)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			c.log.Debug("storage bucket not read again", "bag", loc.bag.ID, "bucket", old.bucket, "err", err)
			continue
		}
		if !moved {
			continue
		}
		c.log.Debug("provider unreachable at the addresses read a block behind; dialling the ones named now", "bag", loc.bag.ID, "peer", cand.peer, "addrs", cand.addrs)
		c.forgetDialFailure(cand)
		retry = append(retry, cand)
	}
	if len(retry) == 0 {
		return nil, context.Cause(bctx) // nil unless the chain halted after one block
	}
	lctx, cancel := context.WithTimeout(ctx, c.opts.locate)
	defer cancel()
	errs := c.connectAll(lctx, retry)
	live := map[peer.ID]bool{c.host.ID(): true}
	for _, l := range loc.live {
		live[l.peer] = true
	}
	var reached []peer.ID
	for i, cand := range retry {
		switch {
		case errs[i] != nil:
			setPeerError(loc.failed, cand.peer, errs[i])
		case !live[cand.peer]:
			live[cand.peer] = true
			loc.live = append(loc.live, cand)
			reached = append(reached, cand.peer)
		}
	}
	loc.failed = slices.DeleteFunc(loc.failed, func(e PeerError) bool { return e.Peer != "" && live[e.Peer] })
	loc.unreached = slices.DeleteFunc(loc.unreached, func(u candidate) bool { return live[u.peer] })
	return reached, ctx.Err()
}

// renamed reads old's storage bucket again and returns the operator it
// names now, when that is another peer than old's or the same at other
// addresses; moved is false when it names old's again, or no usable
// operator.
func (c *Client) renamed(ctx context.Context, old candidate) (cand candidate, moved bool, err error) {
	b, err := c.chain.StorageBucket(ctx, old.bucket)
	if err != nil {
		return candidate{}, false, err
	}
	if b.OperatorStatus != chain.OperatorActive || b.Metadata == nil || b.Metadata.PeerID == "" {
		return candidate{}, false, nil
	}
	cand, err = operatorOf(b)
	if err != nil || (cand.peer == old.peer && sameAddrs(cand.addrs, old.addrs)) {
		return candidate{}, false, nil
	}
	return cand, true, nil
}

// blockBound bounds a wait for the next block, and the reads after it, by
// the locate timeout: a halted chain makes no block, and the wait then
// ends with an error matching errNoNewBlock instead of never.
func (c *Client) blockBound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, c.opts.locate, fmt.Errorf("%w in %s", errNoNewBlock, c.opts.locate))
}

// nextBlock waits for the block after the chain's latest. When ctx ends
// first it returns ctx's cause.
func (c *Client) nextBlock(ctx context.Context) error {
	t := c.chain.Transport()
	h, err := t.LatestHeight(ctx)
	if err == nil {
		err = t.WaitForHeight(ctx, h+1)
	}
	if err != nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return err
}

// sameAddrs reports whether a and b hold the same addresses, in any order.
func sameAddrs(a, b []ma.Multiaddr) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.ContainsFunc(b, x.Equal) {
			return false
		}
	}
	return true
}

// setPeerError replaces the error of p in failed with err.
func setPeerError(failed []PeerError, p peer.ID, err error) {
	for i := range failed {
		if failed[i].Peer == p {
			failed[i].Err = err
		}
	}
}

// operators reads the storage buckets ids of loc's bag and returns their
// operators as candidates; a bucket without a usable one is recorded in loc.
func (c *Client) operators(ctx context.Context, loc *located, ids []chain.StorageBucketID) ([]candidate, error) {
	var named []candidate
	for _, id := range ids {
		b, err := c.chain.StorageBucket(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("find providers of bag %s: storage bucket %d: %w", loc.bag.ID, id, err)
		}
		if b.OperatorStatus != chain.OperatorActive || b.Metadata == nil || b.Metadata.PeerID == "" {
			c.log.Debug("storage bucket has no usable operator", "bag", loc.bag.ID, "bucket", id, "status", b.OperatorStatus)
			loc.unnamed = append(loc.unnamed, id)
			loc.unnamedErrs = append(loc.unnamedErrs, PeerError{Err: fmt.Errorf("storage bucket %d has no active operator with published node metadata", id)})
			continue
		}
		cand, err := operatorOf(b)
		if err != nil {
			loc.failed = append(loc.failed, PeerError{Err: err})
			continue
		}
		named = append(named, cand)
	}
	return named, nil
}

// operatorOf returns the operator bucket b names (its metadata published)
// as a candidate: its peer ID and the addresses that parse.
func operatorOf(b chain.StorageBucket) (candidate, error) {
	p, err := peer.Decode(b.Metadata.PeerID)
	if err != nil {
		return candidate{}, fmt.Errorf("storage bucket %d: operator metadata has a bad peer ID %q", b.ID, b.Metadata.PeerID)
	}
	cand := candidate{peer: p, bucket: b.ID, named: true}
	for _, s := range b.Metadata.Multiaddrs {
		if a, err := ma.NewMultiaddr(s); err == nil {
			cand.addrs = append(cand.addrs, a)
		}
	}
	return cand, nil
}

// connectNamed connects to the named candidates (with the DHT's addresses
// for those the chain's do not reach) and adds them to loc's live or
// failed providers; with dhtOnly, peers the DHT names but the chain does
// not are added too.
func (c *Client) connectNamed(ctx context.Context, loc *located, named []candidate, dhtOnly bool) {
	bagID := loc.bag.ID
	lctx, cancel := context.WithTimeout(ctx, c.opts.locate)
	defer cancel()
	// The DHT lookup runs beside the first connection attempts; it is only
	// waited for when some named provider could not be reached with the
	// chain's addresses, or for reads that may use other holders.
	dhtDone := make(chan []peer.AddrInfo, 1)
	dctx, dcancel := context.WithCancel(lctx)
	defer dcancel()
	go func() {
		found, _ := c.host.FindProviders(dctx, p2p.BagKey(bagID.String()), 0)
		dhtDone <- found
	}()

	errs := c.connectAll(lctx, named)
	var missing bool
	for _, e := range errs {
		if e != nil {
			missing = true
		}
	}
	var found []peer.AddrInfo
	if missing || dhtOnly {
		found = <-dhtDone
	} else {
		dcancel()
		<-dhtDone
	}
	byPeer := map[peer.ID][]ma.Multiaddr{}
	for _, f := range found {
		byPeer[f.ID] = append(byPeer[f.ID], f.Addrs...)
	}
	var retry []candidate
	var retryIdx []int
	for i, e := range errs {
		if e != nil && len(byPeer[named[i].peer]) > 0 {
			cand := named[i]
			cand.addrs = byPeer[cand.peer]
			retry = append(retry, cand)
			retryIdx = append(retryIdx, i)
		}
	}
	if len(retry) > 0 {
		for k, e := range c.connectAll(lctx, retry) {
			errs[retryIdx[k]] = e
		}
	}
	seen := map[peer.ID]bool{c.host.ID(): true}
	for _, l := range loc.live {
		seen[l.peer] = true
	}
	for i, cand := range named {
		if seen[cand.peer] {
			continue
		}
		seen[cand.peer] = true
		if errs[i] != nil {
			loc.failed = append(loc.failed, PeerError{Peer: cand.peer, Err: errs[i]})
			loc.unreached = append(loc.unreached, cand)
			continue
		}
		loc.live = append(loc.live, cand)
	}
	if dhtOnly {
		var extra []candidate
		for _, f := range found {
			if seen[f.ID] {
				continue
			}
			seen[f.ID] = true
			extra = append(extra, candidate{peer: f.ID, addrs: f.Addrs})
		}
		for i, e := range c.connectAll(lctx, extra) {
			if e == nil {
				loc.live = append(loc.live, extra[i])
			}
		}
	}
}

// connectAll connects to every candidate in parallel and returns one error
// (or nil) per candidate.
func (c *Client) connectAll(ctx context.Context, cands []candidate) []error {
	errs := make([]error, len(cands))
	var wg sync.WaitGroup
	for i, cand := range cands {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.connect(ctx, cand)
		}()
	}
	wg.Wait()
	return errs
}

// connect connects to one candidate with the addresses it has (and any the
// peerstore already knows).
func (c *Client) connect(ctx context.Context, cand candidate) error {
	h := c.host.Libp2p()
	if len(cand.addrs) > 0 {
		h.Peerstore().AddAddrs(cand.peer, cand.addrs, peerstore.TempAddrTTL)
	}
	if len(h.Peerstore().Addrs(cand.peer)) == 0 {
		return errors.New("no known address")
	}
	if err := c.host.Connect(ctx, peer.AddrInfo{ID: cand.peer}); err != nil {
		return fmt.Errorf("cannot connect: %w", trimDialError(err))
	}
	return nil
}

// trimDialError keeps a dial error's message short: libp2p lists every
// address tried, which drowns the cause in a one-line message.
func trimDialError(err error) error {
	s := err.Error()
	if len(s) > 160 {
		return errors.New(s[:160] + "…")
	}
	return err
}

// parseAddr parses a multiaddr a chain record holds.
func parseAddr(s string) (ma.Multiaddr, error) { return ma.NewMultiaddr(s) }
