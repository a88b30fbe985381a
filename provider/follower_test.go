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

// Events mark only what the node cares about: the objects they name in a
// bag assigned to its bucket (with the deletion an event claims), a whole
// bag moved to or from its bucket; peers' changes retry what waits, never
// the whole bucket.
func TestEventsMarkBags(t *testing.T) {
	bs, _ := heldFixture(t)
	s := &Server{id: Identity{Bucket: 2}, holdings: newHoldings(bs, time.Hour), state: newStateFile(""), recon: newReconciler(),
		auth: newChainAuth(newFakeChain(), 2), peers: &peerFinder{cache: map[chain.BagID]cachedPeers{}}}
	mine, theirs, incoming := chain.ChannelBag(1), chain.ChannelBag(2), chain.ChannelBag(3)
	s.setAssigned(mine, true)
	for _, p := range []chain.EventPayload{
		chain.ObjectsRegistered{Bag: mine, Objects: []chain.DataObject{{ID: 5}}},
		chain.ObjectsAccepted{Bag: mine, Objects: []chain.ObjectID{5}},
		chain.ObjectsDeleted{Bag: mine, Objects: []chain.ObjectID{6}, Reason: chain.DeletedExpired},
		chain.ObjectsDeleted{Bag: theirs, Objects: []chain.ObjectID{9}},
		chain.StorageBagBucketsUpdated{Bag: incoming, Added: []chain.StorageBucketID{2}},
		chain.StorageBagBucketsUpdated{Bag: theirs, Added: []chain.StorageBucketID{5}},
		chain.BagCreated{Bag: theirs, StorageBuckets: []chain.StorageBucketID{4}},
	} {
		s.handleEvent(chain.NewEvent(p), 1)
	}
	work, all := s.recon.take()
	if all || len(work) != 2 || work[mine] == nil || work[incoming] == nil {
		t.Fatalf("marked %v (all %v), want %s and %s", work, all, mine, incoming)
	}
	if w := work[mine]; w.whole || len(w.objs) != 2 || w.objs[5] != "" || w.objs[6] != EvidenceExpired {
		t.Fatalf("bag %s: whole %v, objects %v; want objects 5 and 6 (expired)", mine, w.whole, w.objs)
	}
	if !work[incoming].whole {
		t.Fatalf("bag %s moved to the bucket is not reconciled whole", incoming)
	}
	many := make([]chain.ObjectID, maxDeltaObjects+1)
	for i := range many {
		many[i] = chain.ObjectID(100 + i)
	}
	s.handleEvent(chain.NewEvent(chain.ObjectsAccepted{Bag: mine, Objects: many}), 2)
	if work, _ := s.recon.take(); !work[mine].whole {
		t.Fatalf("an event naming %d objects is read object by object", len(many))
	}
	s.recon.retryLater(mine, 7)
	s.handleEvent(chain.NewEvent(chain.StorageOperatorMetadataSet{Bucket: 7}), 3)
	work, all = s.recon.take()
	if all || work[mine] == nil || work[mine].objs[7] != "" || len(work[mine].objs) != 1 {
		t.Fatalf("new operator metadata: marked %v (all %v); want the object waiting for a retry only", work, all)
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
