package provider

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts"
	p2ptestnet "github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/topics"
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
	if _, err := s.CheckMirror(ctx, &small); !errors.Is(err, contracts.ErrMalformed) {
		t.Errorf("mirror of a 1-byte contract for a 1 MiB object: %v, want ErrMalformed", err)
	}
	other := *c
	other.ContentID = "bafkreiforged"
	if _, err := s.CheckMirror(ctx, &other); !errors.Is(err, contracts.ErrMalformed) {
		t.Errorf("mirror naming another content ID: %v, want ErrMalformed", err)
	}
	if q, r := s.syncer.counts(); q+r != 0 {
		t.Fatalf("refused mirrors queued %d jobs", q+r)
	}
	for range 200 {
		o, err := s.CheckMirror(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Mirror(ctx, c, o, src); err != nil {
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

// objectReads is a fake chain that counts the data objects read.
type objectReads struct {
	*fakeChain
	n atomic.Int64
}

func (o *objectReads) DataObject(ctx context.Context, bag chain.BagID, id chain.ObjectID) (chain.DataObject, error) {
	o.n.Add(1)
	return o.fakeChain.DataObject(ctx, bag, id)
}

// TestMirrorThroughResponder runs MIRRORs against a real contract
// responder whose Mirrorer is the provider node: a contract whose size is
// not the object's is refused MALFORMED before anything is reserved or
// stored, a MIRROR reads its object on chain once, and 50 MIRRORs of one
// contract queue one sync job.
func TestMirrorThroughResponder(t *testing.T) {
	f := newFakeChain()
	const bag = chain.BagID("dynamic:channel:1")
	obj := chain.DataObject{ID: 4, Bag: bag, Size: 1 << 20, ContentID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy", Accepted: true}
	f.objects[chain.ObjectRef{Bag: bag, ID: obj.ID}] = obj
	reads := &objectReads{fakeChain: f}
	s := &Server{c: reads, log: slog.New(slog.DiscardHandler), syncer: newSyncQueue()}

	net := p2ptestnet.NewMock(t, 3, 0)
	provKey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	renterKey, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	st, err := contracts.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	room := &countingRoom{reserved: map[contracts.ID]uint64{}}
	quiet := slog.New(slog.DiscardHandler)
	ph := net.Host(0)
	resp, err := contracts.NewResponder(ph, contracts.NewGossip(ph, nil, quiet), contracts.Identity{Key: provKey, Worker: 1, Bucket: 1},
		allowAll{}, room, st, contracts.WithLogger(quiet), contracts.WithMirrorer(s))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Close() })
	rh := net.Host(1)
	renter := contracts.NewRenter(rh, contracts.NewGossip(rh, nil, quiet), renterKey, 7, nil, nil, quiet)
	t.Cleanup(func() { _ = renter.Close() })

	contract := func(size uint64) *contracts.Contract {
		req := contracts.Request{Terms: contracts.Terms{Bag: bag, Object: obj.ID, ContentID: obj.ContentID, Size: size, Chunks: 1,
			Availability: topics.High, Speed: topics.High, Redundancy: 1}, Duration: 30 * 24 * time.Hour}
		topic, err := req.Topic()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().Truncate(time.Second)
		c := &contracts.Contract{ID: contracts.NewID(), Topic: topic, Terms: req.Terms, Start: now.Add(-time.Minute), End: now.Add(req.Duration),
			Member: 7, Worker: 1, Bucket: 1, ProviderPeer: ph.ID()}
		c.Renter = renterKey.Account()
		c.SignAsProvider(provKey)
		c.SignAsRenter(renterKey)
		return c
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	src := []peer.ID{net.Host(2).ID()}

	small := contract(1)
	if err := renter.Mirror(ctx, small, src); !errors.Is(err, contracts.ErrRefused) || !errors.Is(err, contracts.ErrMalformed) {
		t.Errorf("MIRROR of a 1-byte contract for a 1 MiB object: %v, want a MALFORMED refusal", err)
	}
	if _, err := st.Get(small.ID, small.Provider); !errors.Is(err, contracts.ErrNotFound) {
		t.Errorf("the refused MIRROR's contract is stored: %v", err)
	}
	if n := room.count(); n != 0 {
		t.Errorf("the refused MIRROR reserved room for %d contracts", n)
	}
	if q, r := s.syncer.counts(); q+r != 0 {
		t.Errorf("the refused MIRROR queued %d jobs", q+r)
	}

	c := contract(obj.Size)
	before := reads.n.Load()
	if err := renter.Mirror(ctx, c, src); err != nil {
		t.Fatalf("MIRROR: %v", err)
	}
	waitUntil(t, "the MIRROR's copy queued", func() bool { q, r := s.syncer.counts(); return q+r == 1 })
	if n := reads.n.Load() - before; n != 1 {
		t.Errorf("a MIRROR read its object on chain %d times, want once", n)
	}
	for i := range 50 {
		if err := renter.Mirror(ctx, c, src); err != nil {
			t.Fatalf("MIRROR %d: %v", i, err)
		}
	}
	if q, r := s.syncer.counts(); q != 1 || r != 0 {
		t.Errorf("50 MIRRORs of one contract: %d queued, %d running; want 1 queued", q, r)
	}
	if _, err := st.Get(c.ID, c.Provider); err != nil {
		t.Errorf("the MIRROR's contract is not stored: %v", err)
	}
	if n := room.count(); n != 1 {
		t.Errorf("room reserved for %d contracts, want 1", n)
	}
}

// TestSyncJobSourcesMerged: a MIRROR's job does not replace the sources of
// the job queued (or queued again) for its object: sources are merged, and
// a job that asks the bag's providers (no sources) stays so.
func TestSyncJobSourcesMerged(t *testing.T) {
	q := newSyncQueue()
	o := chain.DataObject{ID: 9}
	a, b := peer.ID("a"), peer.ID("b")
	q.add(syncJob{object: o, sources: []peer.ID{a}})
	q.add(syncJob{object: o, sources: []peer.ID{b}})
	j, _ := q.next()
	if len(j.sources) != 2 || j.sources[0] != a || j.sources[1] != b {
		t.Errorf("sources %v, want [a b]", j.sources)
	}
	q.add(syncJob{object: o}) // queued again while running: the bag's providers
	q.add(syncJob{object: o, sources: []peer.ID{b}})
	q.done(uint64(o.ID), false)
	if j, _ := q.next(); len(j.sources) != 0 {
		t.Errorf("a MIRROR replaced the chain's job sources with %v", j.sources)
	}
}

// countingRoom is a Room that records what it reserved.
type countingRoom struct {
	mu       sync.Mutex
	reserved map[contracts.ID]uint64
}

func (r *countingRoom) Fits(context.Context, *contracts.Contract) error { return nil }

func (r *countingRoom) Reserve(_ context.Context, c *contracts.Contract) (contracts.Grant, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reserved[c.ID] = c.Size
	return contracts.Grant{ContractID: c.ID, Bag: c.Bag, MaxBytes: c.Size, Expires: time.Now().Add(time.Hour)}, nil
}

func (r *countingRoom) Release(id contracts.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reserved, id)
}

func (r *countingRoom) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reserved)
}

// allowAll is an Authority for which every renter is a member and every
// bag assigned: the chain's answers are not what this test is about.
type allowAll struct{}

func (allowAll) CheckMember(context.Context, chain.Account, chain.MemberID) error { return nil }
func (allowAll) CheckBag(context.Context, chain.BagID, chain.Account) error       { return nil }
