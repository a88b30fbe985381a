package faults

import (
	"context"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	fpb "github.com/satchel-net/satchel/protocol/fetch/pb"
	spb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/testnet"
)

// heapCeiling is the most heap the process may hold while a provider is
// flooded with hostile frames: a ceiling check that cannot flake (the
// provider's budgets hold it far lower), not a figure.
const heapCeiling = 1 << 30

// TestHostileFrames sends fuzzed frames on the store and fetch protocols —
// valid messages with random fields and mutated bytes, random bodies,
// oversized and truncated frames — from one peer to a provider. The
// provider must not fall over, the heap stays under its ceiling, and the
// provider still serves an upload and a read afterwards.
func TestHostileFrames(t *testing.T) {
	frames := pick(500, 10_000)
	net := testnet.New(t, testnet.Providers(1))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prov := net.Provider(0).AddrInfo()
	if err := h.Connect(ctx, prov); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(3, uint64(time.Now().UnixNano())))
	var peak uint64
	for _, id := range []protocol.ID{p2p.StoreProtocol, p2p.FetchProtocol} {
		sent := fuzzProtocol(ctx, t, h.Libp2p(), prov.ID, id, frames, r, &peak)
		t.Logf("%s: %d fuzzed frames sent", id, sent)
	}
	if peak > heapCeiling {
		t.Errorf("heap reached %d MiB under hostile frames; ceiling %d MiB", peak>>20, heapCeiling>>20)
	}
	// Still serving.
	f := figures{Scenario: "hostile peers: fuzzed, oversized, truncated frames", Attempted: 2 * frames}
	o, err := upload(ctx, net, randData(r, 1<<20), 0)
	if err != nil {
		t.Fatalf("upload after the flood: %v", err)
	}
	f.Acknowledged = 1
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	switch read(ctx, fc, prov.ID, o) {
	case readCorrupted:
		f.Corrupted++
	case readFailed:
		f.Lost++
	}
	f.Note = "frames per protocol: " + itoa(frames) + ", peak heap " + itoa(int(peak>>20)) + " MiB (ceiling " + itoa(heapCeiling>>20) + " MiB)"
	report(t, f)
}

// fuzzProtocol writes n hostile frames on streams of protocol id, opening a
// new stream whenever the provider resets one, and returns how many it sent.
func fuzzProtocol(ctx context.Context, t *testing.T, h host.Host, to peer.ID, id protocol.ID, n int, r *rand.Rand, peak *uint64) int {
	sent := 0
	for sent < n {
		s, err := h.NewStream(ctx, to, id)
		if err != nil {
			t.Fatalf("open %s stream: %v", id, err)
		}
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		// Drain replies so the provider never blocks on writing them.
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, err := s.Read(buf); err != nil {
					return
				}
			}
		}()
		for range 50 {
			if sent == n {
				break
			}
			sent++
			if _, err := s.Write(hostileFrame(r, id)); err != nil {
				break
			}
		}
		_ = s.Reset()
		if sent%500 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			*peak = max(*peak, ms.HeapAlloc)
		}
	}
	return sent
}

// hostileFrame returns one frame of a hostile peer.
func hostileFrame(r *rand.Rand, id protocol.ID) []byte {
	body := validBody(r, id)
	switch r.IntN(5) {
	case 0: // mutated bytes
		for range 1 + r.IntN(4) {
			if len(body) > 0 {
				body[r.IntN(len(body))] = byte(r.Uint32())
			}
		}
	case 1: // random body
		body = make([]byte, r.IntN(512))
		for i := range body {
			body[i] = byte(r.Uint32())
		}
	case 2: // oversized: announces more than any frame may be
		return binary.AppendUvarint(nil, uint64(p2p.DefaultMaxFrame+1+r.IntN(1<<30)))
	case 3: // truncated: announces more than it sends
		return append(binary.AppendUvarint(nil, uint64(len(body)+1+r.IntN(1<<20))), body...)
	}
	return append(binary.AppendUvarint(nil, uint64(len(body))), body...)
}

// validBody is a well-formed request of protocol id with random fields.
func validBody(r *rand.Rand, id protocol.ID) []byte {
	rb := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	}
	var m proto.Message
	if id == p2p.FetchProtocol {
		req := &fpb.FetchRequest{Id: r.Uint64N(16)}
		if r.IntN(2) == 0 {
			req.Body = &fpb.FetchRequest_Have{Have: &fpb.HaveRequest{Cids: [][]byte{rb(36), rb(r.IntN(64))}}}
		} else {
			req.Body = &fpb.FetchRequest_Get{Get: &fpb.GetRequest{Cid: rb(36), Offset: r.Uint64(), Length: r.Uint64()}}
		}
		m = req
	} else {
		req := &spb.StoreRequest{Id: r.Uint64N(16)}
		switch r.IntN(4) {
		case 0:
			req.Body = &spb.StoreRequest_Request{Request: &spb.StoreChunkRequest{BagId: "dynamic:channel:1", ObjectId: r.Uint64N(4),
				Cid: rb(36), Length: r.Uint64N(4 << 20), Index: r.Uint64(), Proof: [][]byte{rb(r.IntN(128))}, Session: rb(16)}}
		case 1:
			req.Body = &spb.StoreRequest_Bind{Bind: &spb.BindRequest{BagId: "dynamic:channel:1", ObjectId: r.Uint64N(4),
				Chunks: []*spb.ChunkRef{{Cid: rb(36), Size: r.Uint64()}}}}
		case 2:
			req.Body = &spb.StoreRequest_Data{Data: &spb.StoreChunkData{Offset: r.Uint64N(1 << 20), Data: rb(r.IntN(4096)), Last: r.IntN(2) == 0}}
		default:
			req.Body = &spb.StoreRequest_Sign{Sign: &spb.SignRequest{}}
		}
		m = req
	}
	b, _ := proto.Marshal(m)
	return b
}
