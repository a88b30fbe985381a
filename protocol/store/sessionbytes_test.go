package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// sessionRig is a store handler on host 1 of a two-host network, over a
// real block store seen through wrap, whose sessions may hold quota bytes.
type sessionRig struct {
	net  *testnet.Network
	bs   *blockstore.Store
	h    *store.Handler
	auth *spAuth
}

func newSessionRig(t *testing.T, quota int, wrap func(blockstore.ProtocolBlocks) store.Blocks, opts ...store.HandlerOption) sessionRig {
	t.Helper()
	net := testnet.New(t, 2)
	auth := &spAuth{objects: map[uint64]spObject{}, quota: uint64(quota)}
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
	if err != nil {
		t.Fatal(err)
	}
	prov := net.Host(1).Libp2p()
	h := store.NewHandler(wrap(bs.ForProtocols()), auth, prov.Peerstore().PrivKey(prov.ID()), append([]store.HandlerOption{store.WithLogger(spDiscard)}, opts...)...)
	h.Register(net.Host(1).Protocol())
	t.Cleanup(func() { _ = h.Close(); _ = bs.Close() })
	return sessionRig{net: net, bs: bs, h: h, auth: auth}
}

// dial opens a store stream from host 0 to the rig's handler.
func (r sessionRig) dial(ctx context.Context, t *testing.T) *store.Stream {
	t.Helper()
	s, err := store.Open(ctx, r.net.Host(0).Libp2p(), r.net.Host(1).ID())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// landingDisk is the real block store whose put of one chunk, once the
// chunk is stored (the session's bytes count it), waits for the test
// before it returns: the moment a commit has stored its chunk and not yet
// released the chunk's reservation.
type landingDisk struct {
	blockstore.ProtocolBlocks
	chunk  cid.Cid
	landed chan struct{} // closed once the chunk is stored
	gate   chan struct{} // closed to let its put return
}

func (d landingDisk) PutInSession(s store.Session, c cid.Cid, data []byte) error {
	err := d.ProtocolBlocks.PutInSession(s, c, data)
	if c.Equals(d.chunk) {
		close(d.landed)
		<-d.gate
	}
	return err
}

// TestSessionChunkCountedOnceAsItLands: a streamed session may hold exactly
// two chunks. The first is stored, its commit not yet done, as the second
// asks for room: the first counts once, and the second is agreed. The
// reservation used to read the store and the reservations in no order
// against the commit, counted the first chunk twice and refused the second
// (TestNetworkPutThroughContracts in client: a pipelined contract upload
// had its last chunks refused by the hop now and then under load).
func TestSessionChunkCountedOnceAsItLands(t *testing.T) {
	first, second := spRand(61, 128<<10), spRand(62, 128<<10)
	disk := landingDisk{chunk: chunker.ChunkCID(first), landed: make(chan struct{}), gate: make(chan struct{})}
	var once sync.Once
	open := func() { once.Do(func() { close(disk.gate) }) }
	var waiting sync.Once // the second chunk's reservation waits for the first's commit
	r := newSessionRig(t, len(first)+len(second), func(b blockstore.ProtocolBlocks) store.Blocks {
		disk.ProtocolBlocks = b
		return disk
	}, store.WithCountWaitHook(func() {
		select {
		case <-disk.landed:
			waiting.Do(open)
		default:
		}
	}))
	t.Cleanup(open) // before the rig's: the handler closes once no put waits

	ctx, cancel := context.WithTimeout(context.Background(), testnet.WaitTimeout)
	defer cancel()
	s := r.dial(ctx, t)
	t.Cleanup(func() { _ = s.Close() })
	session := bytes.Repeat([]byte{7}, store.SessionIDLength)
	push := func(data []byte) error {
		_, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(data), Data: data, Session: session, Expiry: time.Now().Add(time.Hour)})
		return err
	}
	firstDone := make(chan error, 1)
	go func() { firstDone <- push(first) }()
	select {
	case <-disk.landed:
	case <-ctx.Done():
		t.Fatal("the first chunk was never stored")
	}
	err := push(second)
	open() // (a reservation that did not wait for the first commit is done)
	if err != nil {
		var re *store.RefusedError
		errors.As(err, &re)
		t.Fatalf("second chunk of a session with room for both: %v (refusal %+v)", err, re)
	}
	if err := <-firstDone; err != nil {
		t.Fatalf("first chunk: %v", err)
	}
	if _, n, _, err := r.bs.ForProtocols().SessionInfo(store.ClientSessionID(session)); err != nil || n != r.auth.quota {
		t.Fatalf("session holds %d bytes (%v), want %d", n, err, r.auth.quota)
	}
}

// TestSessionBytesEntriesDropped: a session's byte count lives in the
// handler only while a chunk holds a reservation or its lock. Chunks
// stored concurrently and one refused over the session's grant leave none
// behind, and the refused one's bytes are not counted.
func TestSessionBytesEntriesDropped(t *testing.T) {
	first, second, third := spRand(71, 128<<10), spRand(72, 128<<10), spRand(73, 128<<10)
	r := newSessionRig(t, len(first)+len(second), func(b blockstore.ProtocolBlocks) store.Blocks { return b })

	ctx, cancel := context.WithTimeout(context.Background(), testnet.WaitTimeout)
	defer cancel()
	s := r.dial(ctx, t)
	t.Cleanup(func() { _ = s.Close() })
	session := bytes.Repeat([]byte{8}, store.SessionIDLength)
	push := func(data []byte) error {
		_, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(data), Data: data, Session: session, Expiry: time.Now().Add(time.Hour)})
		return err
	}
	errs := make(chan error, 2)
	for _, d := range [][]byte{first, second} {
		go func() { errs <- push(d) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("chunk of a session with room for it: %v", err)
		}
	}
	if n := store.SessionEntries(r.h); n != 0 {
		t.Fatalf("%d session entries kept after every chunk was stored; want 0", n)
	}
	var re *store.RefusedError
	if err := push(third); !errors.As(err, &re) {
		t.Fatalf("chunk over the session's grant: %v; want a refusal", err)
	}
	if n := store.SessionEntries(r.h); n != 0 {
		t.Fatalf("%d session entries kept after a refusal; want 0", n)
	}
	if _, n, _, err := r.bs.ForProtocols().SessionInfo(store.ClientSessionID(session)); err != nil || n != r.auth.quota {
		t.Fatalf("session holds %d bytes (%v), want %d", n, err, r.auth.quota)
	}
}

// panickyDisk is the real block store whose put of one chunk panics.
type panickyDisk struct {
	blockstore.ProtocolBlocks
	chunk cid.Cid
}

func (d panickyDisk) PutInSession(s store.Session, c cid.Cid, data []byte) error {
	if c.Equals(d.chunk) {
		panic("disk driver bug")
	}
	return d.ProtocolBlocks.PutInSession(s, c, data)
}

// TestSessionBytesDroppedAfterPanic: a session chunk whose put panics
// leaves no byte count behind once its stream is reset, and the session's
// next chunk is stored on a new stream.
func TestSessionBytesDroppedAfterPanic(t *testing.T) {
	bad, good := spRand(81, 128<<10), spRand(82, 128<<10)
	r := newSessionRig(t, len(bad)+len(good), func(b blockstore.ProtocolBlocks) store.Blocks {
		return panickyDisk{b, chunker.ChunkCID(bad)}
	})

	ctx, cancel := context.WithTimeout(context.Background(), testnet.WaitTimeout)
	defer cancel()
	session := bytes.Repeat([]byte{9}, store.SessionIDLength)
	push := func(data []byte) error {
		s := r.dial(ctx, t)
		defer s.Close()
		_, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: chunker.ChunkCID(data), Data: data, Session: session, Expiry: time.Now().Add(time.Hour)})
		return err
	}
	if err := push(bad); err == nil {
		t.Fatal("a chunk whose put panicked was acknowledged")
	}
	// The exchange ends with its stream, which the panic resets.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for store.SessionEntries(r.h) != 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("%d session entries kept after the panicked chunk's stream ended; want 0", store.SessionEntries(r.h))
		case <-tick.C:
		}
	}
	if err := push(good); err != nil {
		t.Fatalf("next chunk of the session: %v", err)
	}
	if n := store.SessionEntries(r.h); n != 0 {
		t.Fatalf("%d session entries kept; want 0", n)
	}
}
