package fetch_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// A stream whose reader sends many GETs and reads nothing holds the memory
// of MaxHeldGETs replies, not one per GET read: with a fetch budget of
// room for exactly that, none of its GETs is refused — they wait — and all
// are served once it reads. A pipelining Client (MaxInFlight GETs on one
// stream) under the same budget is never refused either.
func TestFetchNonReaderHoldsTwoReplies(t *testing.T) {
	held := int64(fetch.MaxHeldGETs) * fetch.GetMemory
	net, reg, cids := busyEnv(t, 2, p2p.MemoryLimits{Protocol: held + fetch.GetMemory/2}, fetch.WithStallEviction(-1))
	gets := append(append([]cid.Cid{}, cids...), cids[:2]...) // ten GETs
	read := pinGETs(t, net, 1, gets)
	waitFetchMemory(t, net.Host(0), held)
	replies := read()
	for i, r := range replies {
		if r.Status != pb.FetchStatus_FETCH_STATUS_OK {
			t.Fatalf("GET %d of a stream read late: %v (%s), want it served", i+1, r.Status, r.Reason)
		}
	}

	f := fetch.NewClient(net.Host(1).Libp2p())
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(cids))
	for range 2 {
		for _, c := range cids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := f.GetBlock(ctx, net.Host(0).ID(), c); err != nil {
					errs <- err
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("pipelined GetBlock under a budget of %d GETs: %v", fetch.MaxHeldGETs, err)
	}
	if n := counter(t, reg, "satchel_provider_fetch_requests_total", "kind", "get", "status", "refused"); n != 0 {
		t.Fatalf("%v GETs refused", n)
	}
}

// Peer IDs that open fetch streams, send GETs and never read cannot keep
// an honest reader out: once they hold the whole fetch budget (every
// stream of theirs pinned at MaxHeldGETs replies, every peer at its
// share), an honest GET resets the stream whose write has been stalled
// longest and is served from the memory it frees.
func TestFetchStalledReadersCannotPinBudget(t *testing.T) {
	const (
		pinners        = 4
		streamsPerPeer = 4
		getsPerStream  = 10
	)
	held := int64(fetch.MaxHeldGETs) * fetch.GetMemory
	peerShare := streamsPerPeer * held // what one pinner holds
	limits := p2p.MemoryLimits{
		Protocol:            pinners*peerShare + fetch.GetMemory/2, // full once they pin
		FetchPeer:           peerShare + fetch.GetMemory/2,
		ProtocolPeerStreams: streamsPerPeer,
	}
	net, reg, cids := busyEnv(t, pinners+2, limits, fetch.WithStallEviction(0))
	gets := make([]cid.Cid, getsPerStream)
	for i := range gets {
		gets[i] = cids[i%len(cids)]
	}
	for p := 1; p <= pinners; p++ {
		for range streamsPerPeer {
			pinGETs(t, net, p, gets)
		}
	}
	waitFetchMemory(t, net.Host(0), pinners*peerShare)

	honest := net.Host(pinners + 1)
	f := fetch.NewClient(honest.Libp2p())
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, c := range cids {
		if _, err := f.GetBlock(ctx, net.Host(0).ID(), c); err != nil {
			t.Fatalf("honest GetBlock while %d peers pin the fetch budget: %v", pinners, err)
		}
	}
	if n := counter(t, reg, "satchel_provider_fetch_streams_evicted_total"); n < 1 {
		t.Fatalf("%v stalled streams reset; the honest reads were served without making room", n)
	}
}
