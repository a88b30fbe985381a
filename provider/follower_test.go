package provider

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// The follower's state survives a restart; the height never goes back; a
// damaged file is reported with what to do.
func TestStateFile(t *testing.T) {
	dir := t.TempDir()
	f := newStateFile(dir)
	if err := f.load(); err != nil {
		t.Fatal(err)
	}
	f.setHeight(7)
	f.setHeight(5)
	f.addBag("dynamic:channel:2")
	f.addBag("dynamic:channel:1")
	f.addBag("dynamic:channel:2")
	if err := f.save(); err != nil {
		t.Fatal(err)
	}
	g := newStateFile(dir)
	if err := g.load(); err != nil {
		t.Fatal(err)
	}
	if g.height() != 7 || len(g.bags()) != 2 || g.bags()[0] != "dynamic:channel:1" {
		t.Fatalf("reloaded state: height %d bags %v", g.height(), g.bags())
	}
	g.removeBag("dynamic:channel:1")
	if err := g.save(); err != nil {
		t.Fatal(err)
	}
	h := newStateFile(dir)
	if err := h.load(); err != nil || len(h.bags()) != 1 {
		t.Fatalf("after removeBag: %v %v", h.bags(), err)
	}

	if err := os.WriteFile(filepath.Join(dir, stateFileName), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := newStateFile(dir).load(); err == nil || !strings.Contains(err.Error(), "delete it") {
		t.Fatalf("damaged state: %v", err)
	}
	mem := newStateFile("")
	mem.setHeight(3)
	if err := mem.save(); err != nil || mem.height() != 3 {
		t.Fatalf("in-memory state: %v", err)
	}
}

// Events mark dirty only the bags the node cares about: assigned to its
// bucket, held, or naming its bucket.
func TestEventsMarkBags(t *testing.T) {
	s := &Server{id: Identity{Bucket: 2}, holdings: newHoldings(), state: newStateFile(""), recon: newReconciler(),
		auth: newChainAuth(newFakeChain(), 2), peers: &peerFinder{cache: map[chain.BagID]cachedPeers{}}}
	mine, theirs, incoming := chain.ChannelBag(1), chain.ChannelBag(2), chain.ChannelBag(3)
	s.setAssigned(mine, true)
	for _, p := range []chain.EventPayload{
		chain.ObjectsRegistered{Bag: mine},
		chain.ObjectsDeleted{Bag: theirs},
		chain.StorageBagBucketsUpdated{Bag: incoming, Added: []chain.StorageBucketID{2}},
		chain.StorageBagBucketsUpdated{Bag: theirs, Added: []chain.StorageBucketID{5}},
		chain.BagCreated{Bag: theirs, StorageBuckets: []chain.StorageBucketID{4}},
	} {
		s.handleEvent(chain.NewEvent(p), 1)
	}
	bags, all := s.recon.take()
	if all || len(bags) != 2 || bags[0] != mine || bags[1] != incoming {
		t.Fatalf("dirty bags %v (all %v), want %s and %s", bags, all, mine, incoming)
	}
	s.handleEvent(chain.NewEvent(chain.StorageOperatorMetadataSet{Bucket: 7}), 1)
	if _, all := s.recon.take(); !all {
		t.Fatal("new operator metadata did not trigger a full reconcile")
	}
}

// A restarted follower resubscribes after the height it saved, unless it is
// too far behind (the start's full reconcile covers that) or new.
func TestFollowerResumesFromSavedHeight(t *testing.T) {
	for _, tc := range []struct {
		saved, start, want int64
	}{
		{saved: 41, start: 50, want: 42},
		{saved: 0, start: 50, want: 51},
		{saved: 5, start: 5 + catchUpGap + 1, want: 5 + catchUpGap + 2},
	} {
		f := newFakeChain()
		s := &Server{c: f, log: slog.New(slog.DiscardHandler), recon: newReconciler()}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.followLoop(ctx, tc.saved, tc.start)
		}()
		select {
		case got := <-f.subscribed:
			if got != tc.want {
				t.Errorf("saved %d, chain at %d: subscribed from %d, want %d", tc.saved, tc.start, got, tc.want)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("no subscription")
		}
		cancel()
		<-done
	}
}
