package client

import (
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store"
)

// With no target that may head, pushAlong pushes the chunk to each target
// in parallel: one busy or slow target does not hold up the others'
// copies. The first target's push waits until the other two have theirs.
func TestPushAlongNoHeadPushesInParallel(t *testing.T) {
	p, ts, j, waited := waitingPush(t, 3, 0, 5)
	p.pushAlong(testCtx(t), ts, j)
	if !<-waited {
		t.Fatal("the other targets were not pushed to while the first target's push waited: pushAlong pushed one after another")
	}
	for i, tg := range ts {
		if !tg.has(0) {
			t.Errorf("target %d does not hold the chunk after pushAlong", i)
		}
	}
}

// TestFailedHopsPushedInParallel: the direct pushes to the hops a pipeline
// reported failed go side by side: the first hop's push waits until the
// other two arrive, which pushes one after another would never let happen.
func TestFailedHopsPushedInParallel(t *testing.T) {
	p, ts, j, waited := waitingPush(t, 4, 1, 6)
	head, forward := ts[0], ts[1:]
	at := map[peer.ID]int{}
	var res store.PipelineResult
	for i, f := range forward {
		at[f.cand.peer] = i
		res.Failed = append(res.Failed, store.HopError{Peer: f.cand.peer, Err: errors.New("link reset")})
	}
	p.failedHops(testCtx(t), head, j, forward, at, res, make([]bool, len(forward)))
	if !<-waited {
		t.Fatal("the other failed hops were not pushed to while the first one's push waited: failedHops pushed one after another")
	}
	for i, f := range forward {
		if !f.has(0) {
			t.Errorf("failed hop %d does not hold the chunk after its direct push", i)
		}
	}
}

// waitingPush makes a pusher of one chunk to n fake providers, all its
// targets, whose provider first, when pushed to, waits (awaitOthers) for
// the pushes to those after it; waited says whether they arrived.
func waitingPush(t *testing.T, n, first int, seed uint64) (*pusher, []*target, *chunkJob, <-chan bool) {
	net := newFakeNet(t, n)
	c := net.client(t.TempDir())
	p := &pusher{c: c, bag: net.bag, object: 1, tr: newTracker(OpPut, nil, 0), expiry: time.Now().Add(time.Hour)}
	data := randomBytes(t, 4096, seed)
	j := &chunkJob{index: 0, info: chunker.ChunkInfo{CID: chunker.ChunkCID(data), Size: len(data)}, data: data}
	others := net.providers[first+1:]
	arrived := make(chan struct{}, len(others))
	for _, pr := range others {
		pr.hook = func(store.ChunkPush) error { arrived <- struct{}{}; return nil }
	}
	waited := make(chan bool, 1)
	net.providers[first].hook = awaitOthers(arrived, len(others), waited)
	ts := make([]*target, n)
	for i, pr := range net.providers {
		ts[i] = &target{cand: candidate{peer: pr.id(), session: []byte("session")}, conn: fakeConn{pr}, fwdLies: headLieLimit}
	}
	p.targets = ts
	return p, ts, j, waited
}

// awaitOthers returns a push hook that waits (10 s at most) for n pushes
// to arrive elsewhere, and says on waited whether they did: pushes made
// one after another never arrive while the first waits.
func awaitOthers(arrived <-chan struct{}, n int, waited chan<- bool) func(store.ChunkPush) error {
	return func(store.ChunkPush) error {
		deadline := time.NewTimer(10 * time.Second)
		defer deadline.Stop()
		for range n {
			select {
			case <-arrived:
			case <-deadline.C:
				waited <- false
				return nil
			}
		}
		waited <- true
		return nil
	}
}
