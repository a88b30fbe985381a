package store

import (
	"context"
	"fmt"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// The store handler's side of pipelined replication: a chunk request with a
// forward list is stored as any other and passed on to the next hop through
// the handler's Relay; the hops' receipts and failures go back with SIGNED.

// setForward keeps what forwarding a chunk needs. A handler without a relay
// reports every hop failed, so the uploader pushes to them itself.
func (h *Handler) setForward(ex *storeExchange, r *pb.StoreChunkRequest, hops []Hop) {
	if len(hops) == 0 {
		return
	}
	if h.cfg.relay == nil {
		for _, hop := range hops {
			ex.hopFailures = append(ex.hopFailures, &pb.HopFailure{Peer: []byte(hop.Peer),
				Reason: fmt.Sprintf("provider %s does not forward chunks; push to this hop directly", h.self)})
		}
		return
	}
	ex.index, ex.proof, ex.forward = r.Index, r.Proof, hops
}

// startForward reports whether ex has a forward list not yet forwarded,
// and marks it forwarded.
func (c *storeConn) startForward(ex *storeExchange) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(ex.forward) == 0 || ex.forwarded {
		return false
	}
	ex.forwarded = true
	return true
}

// forwardHeld forwards a chunk the provider held already (ALREADY_STORED),
// read back from its store, then signs, on a worker.
func (c *storeConn) forwardHeld(ex *storeExchange) {
	c.workers.Add(1)
	go func() {
		defer c.workers.Done()
		err := c.proto.Go(p2p.StoreProtocol, c.remote, func() {
			data, err := c.h.blocks.(BlockReader).Get(ex.chunk)
			if err != nil {
				c.mu.Lock()
				for _, hop := range ex.forward {
					ex.hopFailures = append(ex.hopFailures, &pb.HopFailure{Peer: []byte(hop.Peer),
						Reason: fmt.Sprintf("provider could not read chunk %s back to forward it: %v", ex.chunk, err)})
				}
				c.mu.Unlock()
			} else {
				c.forward(ex, data)
			}
			c.sign(ex)
		})
		if err != nil {
			c.workerPanicked(ex)
		}
	}()
}

// forwardTimeout is how long a hop with hops more hops after it forwards a
// chunk: ForwardTimeout for the longest pipeline's head, ForwardHopMargin
// less for each hop nearer its end. A hop thus gives up on the hops after
// it before the hop before it gives up on it, and its receipt and those
// it relays still reach the uploader.
func forwardTimeout(hops int) time.Duration {
	hops = min(max(hops, 1), MaxForwardHops)
	return ForwardTimeout - time.Duration(MaxForwardHops-hops)*ForwardHopMargin
}

// forward passes a received chunk on to the rest of its pipeline, within
// forwardTimeout, and keeps the hops' receipts and failures for SIGNED.
func (c *storeConn) forward(ex *storeExchange, data []byte) {
	ctx, cancel := context.WithTimeoutCause(c.ctx, forwardTimeout(len(ex.forward)), errForwardDeadline)
	defer cancel()
	receipts, failures := c.h.cfg.relay.forward(ctx, ChunkPush{
		Bag: ex.bag, Object: ex.object, Index: int(ex.index), CID: ex.chunk, Data: data,
		Proof: chunker.Proof{Blocks: ex.proof}, Expiry: ex.expiry, nonce: ex.nonce,
	}, ex.forward, c.log)
	for _, f := range failures {
		c.log.Debug("pipeline hop failed", "chunk", ex.chunk, "hop", peerString(f.Peer), "reason", f.Reason)
	}
	c.h.metrics.hops.WithLabelValues("signed").Add(float64(len(receipts)))
	c.h.metrics.hops.WithLabelValues("failed").Add(float64(len(failures)))
	c.mu.Lock()
	ex.relayed = append(ex.relayed, receipts...)
	ex.hopFailures = append(ex.hopFailures, failures...)
	c.mu.Unlock()
}
