package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peerstore"

	"github.com/satchel-net/satchel/internal/ctxsleep"
	"github.com/satchel-net/satchel/protocol/store"
)

// An upload's answer to a provider that goes away for a moment: a store
// stream that breaks (the provider restarted, a connection reset) or a
// dial refused (it is starting again) is no reason to give the provider
// up at once. The uploader dials it again by peer ID, with capped
// backoff, for up to the client's reconnect wait (WithReconnectWait);
// the receipts it kept say which chunks the provider acknowledged, so only
// the others are sent again. Only then is the provider given up, with an
// unreachableError. While a dial fails, the provider's storage bucket is
// read again after every block (followBucket): a provider restarted on a
// new port is dialled at the addresses it published as soon as the
// client's reads see them.

// DefaultReconnectWait is how long an upload keeps dialling a provider it
// lost before giving it up (WithReconnectWait): long enough for a provider
// restarted by its supervisor to be back.
const DefaultReconnectWait = 30 * time.Second

// Backoff between the dials of a lost provider.
const (
	reconnectBase = 250 * time.Millisecond
	reconnectMax  = 2 * time.Second
)

// outage is a target's time without a stream: since when, when it may be
// dialled next, and why the last try failed. A zero since means none.
type outage struct {
	since   time.Time
	next    time.Time
	backoff time.Duration
	err     error
}

// connLost reports whether err means the provider's stream broke or could
// not be opened, rather than that the provider answered (a refusal, a
// protocol violation, a bad receipt) or the exchange timed out.
func connLost(err error) bool {
	var oe *openError
	return errors.As(err, &oe) || errors.Is(err, store.ErrStreamClosed) || errors.Is(err, network.ErrReset) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// waitReconnect pauses after target t's stream broke or could not be
// opened (err) while doing what, and reports whether to try t again: false
// once t has been unreachable for the client's reconnect wait (t is then
// given up with an unreachableError) or ctx ends. The workers of one
// target share its backoff: one dials, the others wait for its outcome.
func (p *pusher) waitReconnect(ctx context.Context, t *target, what string, err error) bool {
	now := p.c.now()
	t.mu.Lock()
	first := t.down.since.IsZero()
	if first {
		t.down = outage{since: now, backoff: reconnectBase}
	}
	if !now.Before(t.down.next) { // this try failed: schedule the next
		t.down.next = now.Add(t.down.backoff)
		t.down.backoff = min(2*t.down.backoff, reconnectMax)
	}
	t.down.err = err
	since, next := t.down.since, t.down.next
	var oe *openError
	follow := !t.following && t.cand.named && errors.As(err, &oe)
	if follow {
		t.following = true
		t.follow.Add(1)
	}
	t.mu.Unlock()
	if follow {
		go p.followBucket(ctx, t)
	}
	wait := p.c.opts.reconnect
	if waited := now.Sub(since); waited >= wait {
		p.kill(t, &unreachableError{what: what, waited: waited, err: err})
		return false
	}
	if first {
		p.c.log.Info("storage provider unreachable; dialling it again", "bag", p.bag, "peer", t.cand.peer, "for", wait, "err", err)
	}
	if deadline := since.Add(wait); deadline.Before(next) {
		next = deadline
	}
	return ctxsleep.Sleep(ctx, next.Sub(now))
}

// redial opens a new stream to the lost target t (t.mu held): at most one
// dial per backoff step, bounded by what is left of the reconnect wait.
// The peer's chain addresses (the ones its bucket names now, once
// followBucket found it moved) are added again and libp2p's own dial
// backoff is cleared: the uploader paces the dials itself.
func (p *pusher) redial(ctx context.Context, t *target) (storeConn, error) {
	now := p.c.now()
	if now.Before(t.down.next) {
		return nil, t.down.err // another worker just tried
	}
	deadline := t.down.since.Add(p.c.opts.reconnect)
	if !now.Before(deadline) {
		return nil, t.down.err
	}
	cand := t.cand
	if t.moved != nil {
		cand.addrs = t.moved
	}
	p.c.forgetDialFailure(cand)
	dctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	return p.c.openConn(dctx, t.cand.peer)
}

// followBucket runs while target t cannot be dialled, one at a time per
// target, until t is reached or given up or ctx (the pass's) ends: after
// every block it reads t's storage bucket again, and once the bucket names
// other addresses for t's peer, the next dial (at once) uses them. A
// provider restarted on a new port publishes its new addresses in a block
// that the client's reads see a block later, its old addresses refuse
// every dial, and nothing else tells the uploader the new ones: the
// peerstore holds what the chain named and what the lost connection
// learned. The reads cost no wait: the dials go on meanwhile.
func (p *pusher) followBucket(ctx context.Context, t *target) {
	defer t.follow.Done()
	defer func() {
		t.mu.Lock()
		t.following = false
		t.mu.Unlock()
	}()
	for {
		if err := p.c.nextBlock(ctx); err != nil {
			if ctx.Err() != nil || !ctxsleep.Sleep(ctx, reconnectMax) {
				return
			}
			continue
		}
		t.mu.Lock()
		lost := t.dead == nil && !t.down.since.IsZero()
		known := t.cand
		if t.moved != nil {
			known.addrs = t.moved
		}
		t.mu.Unlock()
		if !lost {
			return
		}
		cand, moved, err := p.c.renamed(ctx, known)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			p.c.log.Debug("storage bucket not read again", "bag", p.bag, "bucket", known.bucket, "err", err)
			continue
		}
		if !moved || cand.peer != known.peer {
			continue // (another operator now: the reconnect wait decides)
		}
		p.c.log.Info("unreachable storage provider published new addresses; dialling them", "bag", p.bag, "peer", cand.peer, "addrs", cand.addrs)
		p.c.forgetDialFailure(cand)
		t.mu.Lock()
		t.moved = cand.addrs
		t.down.next = p.c.now()
		t.mu.Unlock()
		return
	}
}

// waitFollowers waits for the followBucket of every target to return
// (after the upload's context ended).
func (p *pusher) waitFollowers() {
	p.mu.Lock()
	ts := slices.Clone(p.targets)
	p.mu.Unlock()
	for _, t := range ts {
		t.follow.Wait()
	}
}

// reachable ends t's outage on a signed receipt or a bind (t.mu held).
func (p *pusher) reachable(t *target) {
	if t.down.since.IsZero() {
		return
	}
	p.c.log.Info("storage provider reachable again", "bag", p.bag, "peer", t.cand.peer, "after", p.c.now().Sub(t.down.since).Round(time.Millisecond))
	t.down = outage{}
}

// forgetDialFailure readies a dial of cand after a failed one: its chain
// addresses go back into the peerstore, and the swarm's dial backoff for
// it (which would refuse dials for seconds) is cleared.
func (c *Client) forgetDialFailure(cand candidate) {
	h := c.host.Libp2p()
	if len(cand.addrs) > 0 {
		h.Peerstore().AddAddrs(cand.peer, cand.addrs, peerstore.TempAddrTTL)
	}
	c.host.ClearDialBackoff(cand.peer)
}

// openFailed wraps the failure to open a store stream, once: a worker
// that finds a dial just failed returns that dial's error.
func openFailed(err error) error {
	var oe *openError
	if errors.As(err, &oe) {
		return err
	}
	return &openError{err: err}
}

// openError is a failure to open a store stream to a provider.
type openError struct{ err error }

func (e *openError) Error() string { return "open store stream: " + e.err.Error() }
func (e *openError) Unwrap() error { return e.err }

// unreachableError is why a target whose stream broke or whose dial failed
// for the whole reconnect wait was given up.
type unreachableError struct {
	what   string
	waited time.Duration
	err    error
}

// Error names what was being done, for how long the provider was dialled
// again, and the last failure.
func (e *unreachableError) Error() string {
	return fmt.Sprintf("%s: unreachable for %s (%v)", e.what, e.waited.Round(time.Millisecond), trimDialError(e.err))
}

// Unwrap returns the last failure.
func (e *unreachableError) Unwrap() error { return e.err }
