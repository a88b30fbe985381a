package provider

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
)

// TestMirrorQueuesOnSync: a MIRROR's copy goes on the sync queue, once per
// object however often it is asked for; a contract whose size or content
// ID is not the object's on chain queues nothing.
func TestMirrorQueuesOnSync(t *testing.T) {
	f := newFakeChain()
	const bag = chain.BagID("dynamic:channel:1")
	obj := chain.DataObject{ID: 4, Bag: bag, Size: 1 << 20, ContentID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", Accepted: true}
	f.objects[chain.ObjectRef{Bag: bag, ID: obj.ID}] = obj
	s := &Server{c: f, log: slog.New(slog.DiscardHandler), syncer: newSyncQueue()}
	ctx := context.Background()
	src := []peer.ID{peer.ID("source")}
	c := &contracts.Contract{ID: contracts.NewID(), Terms: contracts.Terms{Bag: bag, Object: obj.ID, ContentID: obj.ContentID, Size: obj.Size}}

	small := *c
	small.Size = 1
	if err := s.Mirror(ctx, &small, src); !errors.Is(err, contracts.ErrMalformed) {
		t.Errorf("mirror of a 1-byte contract for a 1 MiB object: %v, want ErrMalformed", err)
	}
	other := *c
	other.ContentID = "bafkreiforged"
	if err := s.Mirror(ctx, &other, src); !errors.Is(err, contracts.ErrMalformed) {
		t.Errorf("mirror naming another content ID: %v, want ErrMalformed", err)
	}
	if q, r := s.syncer.counts(); q+r != 0 {
		t.Fatalf("refused mirrors queued %d jobs", q+r)
	}
	for range 200 {
		if err := s.Mirror(ctx, c, src); err != nil {
			t.Fatal(err)
		}
	}
	if q, r := s.syncer.counts(); q != 1 || r != 0 {
		t.Fatalf("200 mirrors of one object: %d queued, %d running; want 1 queued", q, r)
	}
	j, ok := s.syncer.next()
	if !ok || j.object.ID != obj.ID || len(j.sources) != 1 || j.sources[0] != src[0] {
		t.Errorf("queued job %+v, want object %d from the MIRROR's sources", j, obj.ID)
	}
}
