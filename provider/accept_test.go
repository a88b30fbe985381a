package provider

import (
	"context"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// newAcceptServer is a Server with just what the acceptor needs, over a
// fake chain.
func newAcceptServer(t *testing.T, f *fakeChain, window time.Duration, batch int) *Server {
	t.Helper()
	key, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	cfg := defaultConfig()
	cfg.acceptWindow, cfg.acceptBatch = window, batch
	s := &Server{
		c:        f,
		id:       Identity{Worker: 4, Bucket: 2, Transactor: key},
		cfg:      cfg,
		log:      slog.New(slog.DiscardHandler),
		acceptor: newAcceptor(),
		recon:    newReconciler(),
	}
	s.m, err = newMetrics(nil, s)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.acceptLoop(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return s
}

func registerFake(f *fakeChain, bag chain.BagID, ids ...chain.ObjectID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range ids {
		f.objects[chain.ObjectRef{Bag: bag, ID: id}] = chain.DataObject{ID: id, Bag: bag, Size: 1, ContentID: "x"}
	}
}

// waitAccepted waits until every object is accepted on the fake chain.
func waitAccepted(t *testing.T, f *fakeChain, bag chain.BagID, ids ...chain.ObjectID) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		all := true
		f.mu.Lock()
		for _, id := range ids {
			if !f.objects[chain.ObjectRef{Bag: bag, ID: id}].Accepted {
				all = false
			}
		}
		f.mu.Unlock()
		if all {
			return
		}
		select {
		case <-f.submitted1:
		case <-deadline:
			t.Fatalf("objects %v of %s not accepted; submitted %v", ids, bag, f.accepts())
		}
	}
}

// Objects bound within the accept window go in one transaction per bag,
// signed for the node's worker and bucket.
func TestAcceptBatchesWithinWindow(t *testing.T) {
	f := newFakeChain()
	bag := chain.ChannelBag(1)
	registerFake(f, bag, 1, 2, 3, 4)
	s := newAcceptServer(t, f, time.Hour, 4) // only a full batch flushes
	for _, id := range []chain.ObjectID{3, 1, 4, 2} {
		s.acceptor.add(bag, id)
	}
	waitAccepted(t, f, bag, 1, 2, 3, 4)
	got := f.accepts()
	if len(got) != 1 || !slices.Equal(got[0].Objects, []chain.ObjectID{1, 2, 3, 4}) || got[0].Worker != 4 || got[0].Bucket != 2 || got[0].Bag != bag {
		t.Fatalf("accept transactions = %+v, want one of objects 1-4 by worker 4 of bucket 2", got)
	}
}

// A batch never exceeds the batch size, each transaction holds one bag's
// objects, and every object is accepted exactly once.
func TestAcceptBatchLimitAndBags(t *testing.T) {
	f := newFakeChain()
	a, b := chain.ChannelBag(1), chain.ChannelBag(2)
	registerFake(f, a, 1, 2, 3, 4, 5)
	registerFake(f, b, 6, 7)
	s := newAcceptServer(t, f, 20*time.Millisecond, 3)
	s.acceptor.add(a, 1)
	// A duplicate of an object queued adds nothing. (Added at once: once
	// its batch is accepted and done, the same object may queue again.)
	s.acceptor.add(a, 1)
	for _, id := range []chain.ObjectID{2, 3, 4, 5} {
		s.acceptor.add(a, id)
	}
	s.acceptor.add(b, 6)
	s.acceptor.add(b, 7)
	waitAccepted(t, f, a, 1, 2, 3, 4, 5)
	waitAccepted(t, f, b, 6, 7)
	seen := map[chain.ObjectID]int{}
	for _, m := range f.accepts() {
		if len(m.Objects) > 3 {
			t.Errorf("transaction of %d objects, above the batch of 3", len(m.Objects))
		}
		for _, id := range m.Objects {
			seen[id]++
			if (id <= 5) != (m.Bag == a) {
				t.Errorf("object %d accepted in bag %s", id, m.Bag)
			}
		}
	}
	for id := chain.ObjectID(1); id <= 7; id++ {
		if seen[id] != 1 {
			t.Errorf("object %d accepted %d times", id, seen[id])
		}
	}
}

// A batch that fails because one object was deleted meanwhile is retried
// object by object, so the others are still accepted.
func TestAcceptSplitsAroundDeletedObject(t *testing.T) {
	f := newFakeChain()
	bag := chain.ChannelBag(1)
	registerFake(f, bag, 1, 3)
	s := newAcceptServer(t, f, time.Hour, 3)
	s.acceptor.add(bag, 1)
	s.acceptor.add(bag, 2) // not on chain
	s.acceptor.add(bag, 3)
	waitAccepted(t, f, bag, 1, 3)
	if n := len(f.accepts()); n != 4 {
		t.Errorf("%d transactions, want the batch and then one per object (4)", n)
	}
}
