package client

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store"
)

// relayNet makes the fake providers forward as store.Relay.forward does:
// each provider stores the chunk, then pushes it to the first hop of its
// forward list with the rest as that hop's forward list. A hop that fails
// is reported by the provider that pushed to it, which tries the hop
// after it; a hop that signs forwards the rest itself, and its receipts
// and failures are relayed back up (those it left unreported stay so:
// the uploader sees them ErrNotForwarded, as store.checkRelay accounts
// them). A provider in liars stores the chunk and reports every hop after
// it failed, forwarding nothing, wherever it stands in the pipeline; one
// in old predates forward: it stores and relays nothing.
type relayNet struct {
	net   *fakeNet
	liars map[peer.ID]bool
	old   map[peer.ID]bool
	// hopFail, when set, is asked before each push to a hop: a non-nil
	// error fails the hop with it (the hop storing the chunk anyway when
	// stored is set: it was slow). A context.DeadlineExceeded ends the
	// forward, as the forward deadline does: the hops after it are
	// reported not tried.
	hopFail func(hop peer.ID) (err error, stored bool)
}

// relayConn is a client stream to a provider of a relayNet.
type relayConn struct {
	fakeConn
	r *relayNet
}

// PushPipeline runs the pipeline from the stream's provider and accounts
// for every hop of the forward list, as store.Stream.PushPipeline does.
func (c relayConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	fwd := ch.Forward
	receipts, failed, err := c.r.forward(ctx, c.p, ch)
	if err != nil {
		return store.PipelineResult{}, err
	}
	res := store.PipelineResult{Receipts: receipts}
	signed := make(map[peer.ID]bool)
	for _, hr := range receipts {
		signed[hr.Peer] = true
	}
	reported := make(map[peer.ID]error)
	for _, f := range failed {
		reported[f.Peer] = f.Err
	}
	for _, h := range fwd {
		if signed[h.Peer] {
			continue
		}
		err, ok := reported[h.Peer]
		if !ok {
			err = store.ErrNotForwarded
		}
		res.Failed = append(res.Failed, store.HopError{Peer: h.Peer, Err: err})
	}
	return res, nil
}

// forward has p store ch and pass it along ch.Forward as its kind does.
func (r *relayNet) forward(ctx context.Context, p *fakeProvider, ch store.ChunkPush) ([]store.HopReceipt, []store.HopError, error) {
	fwd := ch.Forward
	ch.Forward = nil
	rc, err := fakeConn{p}.Push(ctx, ch)
	if err != nil {
		return nil, nil, err
	}
	receipts := []store.HopReceipt{{Peer: p.id(), Receipt: rc}}
	var failed []store.HopError
	switch {
	case r.old[p.id()]:
		return receipts, nil, nil
	case r.liars[p.id()]:
		for _, h := range fwd {
			failed = append(failed, store.HopError{Peer: h.Peer, Err: errors.New("stream reset")})
		}
		return receipts, failed, nil
	}
	for i, h := range fwd {
		hp := fakeFetch{r.net}.provider(h.Peer)
		hop := ch
		hop.Session, hop.OnStep, hop.Forward = h.Session, nil, fwd[i+1:]
		if r.hopFail != nil {
			if ferr, stored := r.hopFail(h.Peer); ferr != nil {
				if stored {
					alone := hop
					alone.Forward = nil
					_, _ = fakeConn{hp}.Push(ctx, alone)
				}
				failed = append(failed, store.HopError{Peer: h.Peer, Err: ferr})
				if errors.Is(ferr, context.DeadlineExceeded) {
					for _, rest := range fwd[i+1:] {
						failed = append(failed, store.HopError{Peer: rest.Peer, Err: errors.New("not tried: the forward deadline passed")})
					}
					return receipts, failed, nil
				}
				continue
			}
		}
		got, gotFailed, err := r.forward(ctx, hp, hop)
		if err != nil {
			failed = append(failed, store.HopError{Peer: h.Peer, Err: err})
			continue
		}
		receipts = append(receipts, got...)
		for _, f := range gotFailed {
			if !errors.Is(f.Err, store.ErrNotForwarded) {
				failed = append(failed, f)
			}
		}
		return receipts, failed, nil
	}
	return receipts, failed, nil
}

// hopBusy is a relayed hop failure matching store.ErrProviderBusy.
type hopBusy struct{}

func (hopBusy) Error() string   { return "busy" }
func (hopBusy) Is(t error) bool { return t == store.ErrProviderBusy }

// relayPut puts chunks chunks of 64 KiB with N=3, one chunk at a time
// (WithWindow(1): the counts are exact), pipelined, over r's providers,
// the one in headOnly answering PushPipeline as fakeConn does (it
// predates forward) when it is the client's stream. It returns the
// client's pushes: its uplink copies are the direct ones plus the
// pipelines it headed.
func relayPut(t *testing.T, r *relayNet, seed uint64, chunks int) *pushCounts {
	t.Helper()
	c := r.net.client(t.TempDir(), WithWindow(1))
	n := r.count(c)
	data := randomBytes(t, chunks*64<<10, seed)
	obj, err := c.Put(testCtx(t), r.net.bag, bytes.NewReader(data), WithRedundancy(3), WithReplication(ReplicatePipelined))
	if err != nil {
		t.Fatalf("put: %v", err)
	}
	if len(obj.Providers) != 3 {
		t.Fatalf("object stored on %d providers; want 3", len(obj.Providers))
	}
	for _, p := range r.net.providers {
		if got := p.storeCount(); got != chunks {
			t.Fatalf("provider %s stored %d chunks; want %d", p.id(), got, chunks)
		}
	}
	return n
}

// count makes c's store streams relay as r says (an old provider's do
// not forward) and returns the counts of the pushes c sends on them.
func (r *relayNet) count(c *Client) *pushCounts {
	n := &pushCounts{direct: map[peer.ID]int{}, piped: map[peer.ID]int{}}
	orig := c.openConn
	c.openConn = func(ctx context.Context, id peer.ID) (storeConn, error) {
		sc, err := orig(ctx, id)
		if err != nil {
			return nil, err
		}
		fc := sc.(fakeConn)
		if r.old[id] {
			return countingStoreConn{fc, id, n}, nil
		}
		return countingStoreConn{relayConn{fc, r}, id, n}, nil
	}
	return n
}

// sum adds up m's counts of ps.
func (n *pushCounts) sum(m map[peer.ID]int, ps []*fakeProvider) int {
	s := 0
	for _, p := range ps {
		s += n.get(m, p.id())
	}
	return s
}

// A provider whose reports of failed hops are false is dropped as a head,
// and goes last in the pipelines after: it cannot lie about a hop after
// it, and its lies as a middle hop before are blamed on it, not on the
// honest head. The honest providers head every other pipeline, and the
// uploader sends each chunk about once: the liar's lies cost at most a
// direct push per hop of headLieLimit pipelines.
func TestPipelineLiarBlamedNotHead(t *testing.T) {
	const chunks = 48
	net := newFakeNet(t, 3)
	liar := net.providers[0]
	r := &relayNet{net: net, liars: map[peer.ID]bool{liar.id(): true}}
	n := relayPut(t, r, 9, chunks)
	honestPiped := n.sum(n.piped, net.providers[1:])
	liarPiped := n.get(n.piped, liar.id())
	direct := n.sum(n.direct, net.providers)
	t.Logf("the liar headed %d pipelines, the honest providers %d, of %d chunks; %d direct pushes", liarPiped, honestPiped, chunks, direct)
	if liarPiped > headLieLimit {
		t.Errorf("the liar headed %d pipelines; want at most %d", liarPiped, headLieLimit)
	}
	if honestPiped != chunks-liarPiped {
		t.Errorf("honest providers headed %d pipelines, the liar %d, of %d chunks: some went direct", honestPiped, liarPiped, chunks)
	}
	if most := 2 * headLieLimit; direct > most {
		t.Errorf("%d direct pushes; want at most %d (2 hops of each pipeline the liar was contradicted in)", direct, most)
	}
	if copies, most := direct+liarPiped+honestPiped, chunks+2*headLieLimit; copies > most {
		t.Errorf("the uploader sent %d copies of %d chunks; want at most %d", copies, chunks, most)
	}
}

// Rolling upgrade: a provider that predates forward is dropped as a head,
// and goes last in the new providers' pipelines, where it has nothing to
// forward: the new providers head the rest, and are not blamed for the
// hops it left unreported while a middle hop.
func TestPipelineOldProviderGoesLast(t *testing.T) {
	const chunks = 48
	net := newFakeNet(t, 3)
	old := net.providers[0]
	r := &relayNet{net: net, old: map[peer.ID]bool{old.id(): true}}
	n := relayPut(t, r, 11, chunks)
	newPiped := n.sum(n.piped, net.providers[1:])
	oldPiped := n.get(n.piped, old.id())
	direct := n.sum(n.direct, net.providers)
	t.Logf("the old provider headed %d pipelines, the new ones %d (%d and %d), of %d chunks; %d direct pushes", oldPiped, newPiped,
		n.get(n.piped, net.providers[1].id()), n.get(n.piped, net.providers[2].id()), chunks, direct)
	if oldPiped > headLieLimit || newPiped != chunks-oldPiped {
		t.Errorf("the old provider headed %d pipelines, the new ones %d, of %d chunks; want at most %d, and the rest", oldPiped, newPiped, chunks, headLieLimit)
	}
	if most := 2 * headLieLimit; direct > most {
		t.Errorf("%d direct pushes; want at most %d", direct, most)
	}
	// The heads rotate among the providers that may head.
	for _, p := range net.providers[1:] {
		if got := n.get(n.piped, p.id()); got < chunks/2-headLieLimit {
			t.Errorf("new provider %s headed %d pipelines of %d; want about half", p.id(), got, chunks)
		}
	}
}

// A hop that refused busy, or was slow (the forward deadline passed, the
// hops after it not tried, and it stored the chunk anyway), signs the
// uploader's direct push at once: that does not prove its reporter
// false. Honest heads keep heading every pipeline, and each hop failure
// costs one direct push.
func TestPipelineBusyOrSlowHopNotALie(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		stored bool
	}{
		{"busy", hopBusy{}, false},
		{"slow hop, forward deadline", context.DeadlineExceeded, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const chunks = 48
			net := newFakeNet(t, 3)
			var mu sync.Mutex
			fails := map[peer.ID]int{} // each provider's first 8 hop pushes fail
			r := &relayNet{net: net, hopFail: func(id peer.ID) (error, bool) {
				mu.Lock()
				defer mu.Unlock()
				if fails[id] < 8 {
					fails[id]++
					return tc.err, tc.stored
				}
				return nil, false
			}}
			n := relayPut(t, r, 10, chunks)
			piped, direct := n.sum(n.piped, net.providers), n.sum(n.direct, net.providers)
			t.Logf("%d pipelines, %d direct pushes for %d chunks", piped, direct, chunks)
			if piped != chunks {
				t.Errorf("%d of %d chunks pipelined: transient hop failures dropped honest heads", piped, chunks)
			}
			if most := 3 * 8 * 2; direct > most { // a failed hop and, after a deadline, the one not tried
				t.Errorf("%d direct pushes; want at most %d", direct, most)
			}
		})
	}
}

// Passing hop failures spread over a long put (a hop unreachable now and
// then, its direct push signed at once) are contradictions, but few of
// the pipelines each head forwards in: no honest head is dropped for
// them (headLieShare), and every chunk is pipelined.
func TestPipelinePassingHopFailuresKeepHeads(t *testing.T) {
	const chunks = 96
	net := newFakeNet(t, 3)
	var mu sync.Mutex
	pushes := map[peer.ID]int{}
	r := &relayNet{net: net, hopFail: func(id peer.ID) (error, bool) {
		mu.Lock()
		defer mu.Unlock()
		pushes[id]++
		if pushes[id]%12 == 0 {
			return errors.New("stream reset"), false
		}
		return nil, false
	}}
	n := relayPut(t, r, 12, chunks)
	piped, direct := n.sum(n.piped, net.providers), n.sum(n.direct, net.providers)
	t.Logf("%d pipelines, %d direct pushes for %d chunks", piped, direct, chunks)
	if direct < 3*headLieLimit {
		t.Fatalf("%d direct pushes: the test needs %d contradictions or more", direct, 3*headLieLimit)
	}
	if piped != chunks {
		t.Errorf("%d of %d chunks pipelined: an honest head was dropped for passing hop failures", piped, chunks)
	}
}
