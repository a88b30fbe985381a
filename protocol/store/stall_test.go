package store_test

import (
	"crypto/sha256"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// trickleSegment is the data frame size of the trickling tests: the
// smallest segment a provider accepts, so the peer sends real bytes of the
// chunk as slowly as the protocol lets it.
const trickleSegment = store.MinSegmentSize

// fakeClock is the handler's clock in the stall tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) get() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// trickler is a peer that was agreed to store chunks (floodRequests) and
// sends the data of one of them, a segment at a time, as slowly as it
// likes.
type trickler struct {
	t      *testing.T
	s      network.Stream
	fw     *p2p.FrameWriter
	fr     *p2p.FrameReader
	agreed []uint64
	id     uint64 // the exchange whose data is sent
	data   []byte // its chunk
	sent   int
	probe  *pb.StoreChunkRequest // a request the spent budget refuses
	probes uint64
}

// newTrickler floods a provider with small budgets from host 0 (each agreed
// chunk holding its reservation), then sends the segment map of the first
// chunk agreed in trickleSegment segments.
func newTrickler(t *testing.T, clock *fakeClock) (*trickler, chunkList, *prometheus.Registry) {
	t.Helper()
	net, auth, reg := newBudgetEnv(t, store.WithClock(clock.get))
	data := spRand(44, 32<<20)
	res := spChunkList(t, auth, 1, data, 1<<20)
	agreed, over, s := floodRequests(t, net, res, 1)
	if len(agreed) == 0 || over == 0 {
		t.Fatalf("flood: %d agreed, %d refused for the budget; want both", len(agreed), over)
	}
	ch := res.res.Chunks[agreed[0]-1]
	c, size, proof := res.chunk(t, 0)
	tr := &trickler{t: t, s: s, fw: p2p.NewFrameWriter(s), fr: p2p.NewFrameReader(s, store.MaxFrame),
		agreed: agreed, id: agreed[0], data: data[ch.Offset : ch.Offset+int64(ch.Size)],
		probe: &pb.StoreChunkRequest{BagId: spBag, ObjectId: 1, Cid: c, Length: size, Index: 0, Proof: proof,
			ExpiryUnix: time.Now().Add(time.Hour).Unix()}}
	var hashes [][]byte
	for off := 0; off < len(tr.data); off += trickleSegment {
		sum := sha256.Sum256(tr.data[off:min(off+trickleSegment, len(tr.data))])
		hashes = append(hashes, sum[:])
	}
	tr.send(&pb.StoreRequest{Id: tr.id, Body: &pb.StoreRequest_Segments{Segments: &pb.StoreChunkSegments{
		SegmentSize: trickleSegment, Hashes: hashes}}})
	if r := tr.read(); r.Id != tr.id || r.Status != pb.Status_STATUS_SEGMENTS_OK {
		t.Fatalf("segment map: exchange %d %v %q; want %d SEGMENTS_OK", r.Id, r.Status, r.Reason, tr.id)
	}
	return tr, res, reg
}

func (tr *trickler) send(req *pb.StoreRequest) {
	tr.t.Helper()
	if err := tr.fw.WriteMsg(req); err != nil {
		tr.t.Fatal(err)
	}
	if err := tr.fw.Flush(); err != nil {
		tr.t.Fatal(err)
	}
}

func (tr *trickler) read() *pb.StoreReply {
	tr.t.Helper()
	_ = tr.s.SetReadDeadline(time.Now().Add(30 * time.Second))
	var r pb.StoreReply
	if err := tr.fr.ReadMsg(&r); err != nil {
		tr.t.Fatalf("reading a reply: %v", err)
	}
	return &r
}

// segment sends the chunk's next segment, real bytes that match its hash.
func (tr *trickler) segment() {
	tr.t.Helper()
	end := min(tr.sent+trickleSegment, len(tr.data))
	tr.send(&pb.StoreRequest{Id: tr.id, Body: &pb.StoreRequest_Data{Data: &pb.StoreChunkData{
		Offset: uint64(tr.sent), Data: tr.data[tr.sent:end], Last: end == len(tr.data)}}})
	tr.sent = end
}

// handled waits until the provider handled every frame sent so far, so
// they were taken at the time the clock said when they were sent: it
// answers a request its spent budget refuses at once, in order (and a
// refused request is no progress). Anything else answered first fails
// the test.
func (tr *trickler) handled() {
	tr.t.Helper()
	tr.probes++
	tr.send(&pb.StoreRequest{Id: 1<<42 + tr.probes, Body: &pb.StoreRequest_Request{Request: tr.probe}})
	if r := tr.read(); r.Status != pb.Status_STATUS_REFUSED || !strings.Contains(r.Reason, "memory budget") {
		tr.t.Fatalf("waiting for a refusal over the budget: exchange %d %v %q", r.Id, r.Status, r.Reason)
	}
}

// TestTrickleBelowTheFloorReleasesTheBudget: a peer agreed to store chunks
// sends real bytes of one of them, each segment matching its hash, but
// fewer than MinProgressBytes per IdleTimeout (a 16 KiB segment every half
// IdleTimeout). Data alone no longer keeps the exchanges: once they waited
// IdleTimeout without that much progress, the provider ends every one
// FAILED, the trickled one too, and the budget they held is the peer's
// again.
func TestTrickleBelowTheFloorReleasesTheBudget(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	tr, res, _ := newTrickler(t, clock)
	if 2*trickleSegment >= store.MinProgressBytes {
		t.Fatalf("two segments (%d bytes) per IdleTimeout reach the floor (%d): the test would trickle above it", 2*trickleSegment, store.MinProgressBytes)
	}
	clock.add(store.IdleTimeout / 2)
	tr.segment()
	tr.handled() // nothing given up yet
	clock.add(store.IdleTimeout / 2)
	tr.segment()
	failed := map[uint64]bool{}
	for range tr.agreed {
		r := tr.read()
		if r.Status != pb.Status_STATUS_FAILED || !strings.Contains(r.Reason, "given up") {
			t.Fatalf("trickled stream: exchange %d %v %q; want FAILED, given up", r.Id, r.Status, r.Reason)
		}
		failed[r.Id] = true
	}
	if !failed[tr.id] {
		t.Fatalf("the trickled exchange %d was not given up (failed: %v)", tr.id, failed)
	}
	// The budget is free again: a new request on the same stream is agreed.
	c, size, proof := res.chunk(t, 0)
	tr.send(&pb.StoreRequest{Id: 1 << 41, Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
		BagId: spBag, ObjectId: 1, Cid: c, Length: size, Index: 0, Proof: proof, ExpiryUnix: time.Now().Add(time.Hour).Unix(),
	}}})
	if r := tr.read(); r.Status != pb.Status_STATUS_AGREED {
		t.Fatalf("request after the trickled exchanges ended: %v %q; want AGREED", r.Status, r.Reason)
	}
}

// TestSlowUploaderAboveTheFloorKept: an honest uploader on a thin uplink
// sends its chunk a segment every IdleTimeout/6 (about 26 kbit/s, above
// the floor), so the chunk takes many times IdleTimeout: neither it nor
// the exchanges agreed behind it are given up, and the chunk is stored.
func TestSlowUploaderAboveTheFloorKept(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	tr, _, reg := newTrickler(t, clock)
	const step = store.IdleTimeout / 6
	if trickleSegment*int(store.IdleTimeout/step) < store.MinProgressBytes {
		t.Fatalf("a segment every %v is below the floor: the test would not be an honest peer", step)
	}
	for tr.sent < len(tr.data) {
		clock.add(step)
		tr.segment()
		if tr.sent < len(tr.data) {
			tr.handled()
		}
	}
	if elapsed := time.Duration(len(tr.data)/trickleSegment) * step; elapsed < 4*store.IdleTimeout {
		t.Fatalf("the chunk took %v; the test wants several IdleTimeouts", elapsed)
	}
	// Anything given up would have been answered before the last segment
	// was taken, and so before the chunk's DATA_RECEIVED.
	if r := tr.read(); r.Id != tr.id || r.Status != pb.Status_STATUS_DATA_RECEIVED {
		t.Fatalf("slow uploader: exchange %d %v %q; want %d DATA_RECEIVED", r.Id, r.Status, r.Reason, tr.id)
	}
	if n := spCounter(t, reg, "satchel_provider_store_chunks_total", "result", "failed"); n != 0 {
		t.Fatalf("%v exchanges failed on a stream above the floor", n)
	}
}
