package faults

import (
	"context"
	crand "crypto/rand"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
	spb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/testnet"
)

// TestFloodSessionsAndBinds floods a provider, with its default memory
// budgets, from one peer: streamed-upload sessions that agree to chunks and
// never send them, and BINDs of MaxBindChunks chunks, on every store stream
// the peer may open. The provider refuses what its budget cannot hold with a
// reason that says so, the heap stays under its ceiling, and another peer's
// upload and read still go through.
func TestFloodSessionsAndBinds(t *testing.T) {
	net := testnet.New(t, testnet.Providers(1))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	flooder, err := p2p.New(ctx, p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer flooder.Close()
	prov := net.Provider(0).AddrInfo()
	if err := flooder.Connect(ctx, prov); err != nil {
		t.Fatal(err)
	}
	streams := pick(3, p2p.DefaultMemoryLimits.ProtocolPeerStreams)
	bindEvery := uint64(pick(32, 8)) // one request in bindEvery is a BIND
	var (
		opened   []network.Stream
		refused  int // for the memory budget
		denied   int // for any other reason (no contract for the session, object not on chain)
		resets   int
		answered int
		peak     uint64
	)
	chunks := make([]*spb.ChunkRef, store.MaxBindChunks)
	for i := range chunks {
		chunks[i] = &spb.ChunkRef{Cid: chunker.ChunkCID([]byte{byte(i), byte(i >> 8), byte(i >> 16)}).Bytes(), Size: 1 << 20}
	}
	for range streams {
		s, err := flooder.Libp2p().NewStream(ctx, prov.ID, p2p.StoreProtocol)
		if err != nil {
			break // the per-peer stream limit: also a refusal
		}
		opened = append(opened, s)
		_ = s.SetDeadline(time.Now().Add(time.Minute))
		fw := p2p.NewFrameWriter(s)
		for id := uint64(1); id <= store.MaxChunksInFlight; id++ {
			var req *spb.StoreRequest
			if id%bindEvery == 0 {
				req = &spb.StoreRequest{Id: id, Body: &spb.StoreRequest_Bind{Bind: &spb.BindRequest{
					BagId: string(net.Bag), ObjectId: 1_000_000 + id, Chunks: chunks}}}
			} else {
				sess := make([]byte, store.SessionIDLength)
				_, _ = crand.Read(sess)
				c := chunker.ChunkCID(sess)
				req = &spb.StoreRequest{Id: id, Body: &spb.StoreRequest_Request{Request: &spb.StoreChunkRequest{
					BagId: string(net.Bag), Cid: c.Bytes(), Length: chunker.MaxChunkSize, Session: sess,
					ExpiryUnix: time.Now().Add(time.Hour).Unix()}}}
			}
			if err := fw.WriteMsg(req); err != nil {
				break
			}
		}
		_ = fw.Flush()
		fr := p2p.NewFrameReader(s, store.MaxFrame)
		for range store.MaxChunksInFlight {
			var r spb.StoreReply
			if err := fr.ReadMsg(&r); err != nil {
				// A frame the budget cannot hold resets the stream.
				resets++
				break
			}
			answered++
			switch {
			case r.Status == spb.Status_STATUS_REFUSED && strings.Contains(r.Reason, "memory budget"):
				refused++
			case r.Status == spb.Status_STATUS_REFUSED || r.Status == spb.Status_STATUS_FAILED:
				denied++
			}
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapAlloc)
	}
	// Since streamed sessions need a consigned contract, the provider
	// refuses the flood's sessions before it reserves anything; BINDs of
	// objects not on chain likewise. Either way nothing may be accepted.
	if refused+denied+resets == 0 || refused+denied < answered {
		t.Errorf("%d streams of sessions and BINDs (%d answers): %d refused for the budget, %d for another reason, %d streams reset; every request must be refused",
			len(opened), answered, refused, denied, resets)
	}
	if peak > heapCeiling {
		t.Errorf("heap reached %d MiB under the flood; ceiling %d MiB", peak>>20, heapCeiling>>20)
	}

	// Another peer is served while the flood holds its reservations.
	f := figures{Scenario: "flood of sessions and BINDs from one peer", Attempted: answered + 1}
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	o, err := upload(ctx, net, randData(rand.New(rand.NewPCG(7, 7)), 1<<20), 0)
	if err != nil {
		t.Fatalf("another peer's upload during the flood: %v", err)
	}
	f.Acknowledged = 1
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	switch readBack(ctx, h.Libp2p(), fc, prov, o) {
	case readCorrupted:
		f.Corrupted++
	case readFailed:
		f.Lost++
	}
	for _, s := range opened {
		_ = s.Reset()
	}
	f.Note = itoa(len(opened)) + " streams, " + itoa(refused) + " requests refused and " + itoa(resets) + " streams reset for the budget, " + itoa(denied) + " refused before it (no contract, not on chain), peak heap " + itoa(int(peak>>20)) + " MiB"
	report(t, f)
}
