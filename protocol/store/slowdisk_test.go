package store_test

import (
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// slowDisk is the provider's real block store whose chunk writes wait
// until the test opens the gate: a disk slower than the uploader, a fault
// a test cannot otherwise cause.
type slowDisk struct {
	blockstore.ProtocolBlocks
	gate chan struct{}
}

func (d slowDisk) wait() { <-d.gate }

func (d slowDisk) PutInSession(s store.Session, c cid.Cid, data []byte) error {
	d.wait()
	return d.ProtocolBlocks.PutInSession(s, c, data)
}

func (d slowDisk) PutVerifiedInSession(s store.Session, c cid.Cid, data []byte) error {
	d.wait()
	return d.ProtocolBlocks.PutVerifiedInSession(s, c, data)
}

// TestSlowDiskDoesNotStallTheUploader: an uploader sends chunks faster than
// the provider's disk stores them, until MaxStreamBuffered bytes wait for
// the disk and the provider stops reading its stream. The disk takes longer
// than IdleTimeout; meanwhile an exchange agreed before waits for its data,
// which the provider is not reading. Once the disk catches up, that wait
// is not counted against the uploader (the provider's own back-pressure
// resets the progress floor, MinProgressBytes): the exchange is not given
// up, and its chunk is then stored.
func TestSlowDiskDoesNotStallTheUploader(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	net := testnet.New(t, 2)
	auth := &spAuth{objects: map[uint64]spObject{}, quota: 1 << 40}
	bs, err := blockstore.Open(t.TempDir(), blockstore.WithSessionExpiry(0), blockstore.WithLogger(spDiscard))
	if err != nil {
		t.Fatal(err)
	}
	const chunkSize = chunker.MaxChunkSize
	fill := store.MaxStreamBuffered/chunkSize + 1 // chunks whose bytes stop the provider reading
	disk := slowDisk{ProtocolBlocks: bs.ForProtocols(), gate: make(chan struct{})}
	var once sync.Once
	open := func() { once.Do(func() { close(disk.gate) }) }
	prov := net.Host(1).Libp2p()
	waiting := make(chan struct{}, 1) // the provider stopped reading for its disk
	h := store.NewHandler(disk, auth, prov.Peerstore().PrivKey(prov.ID()), store.WithLogger(spDiscard), store.WithClock(clock.get),
		store.WithBackpressureHook(func() {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}))
	h.Register(net.Host(1).Protocol())
	t.Cleanup(func() { open(); _ = h.Close(); _ = bs.Close() })

	data := spRand(51, (fill+2)*chunkSize)
	res := spChunkList(t, auth, 1, data, chunkSize)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := net.Host(0).Libp2p().NewStream(ctx, prov.ID(), p2p.StoreProtocol)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Reset() })
	fw, fr := p2p.NewFrameWriter(s), p2p.NewFrameReader(s, store.MaxFrame)
	send := func(reqs ...*pb.StoreRequest) {
		t.Helper()
		for _, r := range reqs {
			if err := fw.WriteMsg(r); err != nil {
				t.Fatal(err)
			}
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	read := func() *pb.StoreReply {
		t.Helper()
		_ = s.SetReadDeadline(time.Now().Add(30 * time.Second))
		var r pb.StoreReply
		if err := fr.ReadMsg(&r); err != nil {
			t.Fatalf("reading a reply: %v", err)
		}
		return &r
	}
	request := func(i int) *pb.StoreRequest {
		c, size, proof := res.chunk(t, i)
		return &pb.StoreRequest{Id: uint64(i + 1), Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
			BagId: spBag, ObjectId: 1, Cid: c, Length: size, Index: uint64(i), Proof: proof,
			ExpiryUnix: time.Now().Add(time.Hour).Unix()}}}
	}
	chunk := func(i int) []byte { ch := res.res.Chunks[i]; return data[ch.Offset : ch.Offset+int64(ch.Size)] }
	segments := func(i int) *pb.StoreRequest {
		sum := sha256.Sum256(chunk(i))
		return &pb.StoreRequest{Id: uint64(i + 1), Body: &pb.StoreRequest_Segments{Segments: &pb.StoreChunkSegments{
			SegmentSize: uint32(len(chunk(i))), Hashes: [][]byte{sum[:]}}}}
	}
	dataFrame := func(i int) *pb.StoreRequest {
		return &pb.StoreRequest{Id: uint64(i + 1), Body: &pb.StoreRequest_Data{Data: &pb.StoreChunkData{Data: chunk(i), Last: true}}}
	}
	// replies reads one reply of each exchange of want, in any order, each
	// with the status want gives it; any other reply fails the test.
	replies := func(want map[int]pb.Status) {
		t.Helper()
		left := map[uint64]pb.Status{}
		for i, st := range want {
			left[uint64(i+1)] = st
		}
		for len(left) > 0 {
			r := read()
			if st, ok := left[r.Id]; !ok || r.Status != st {
				t.Fatalf("exchange %d answered %v %q; want %v", r.Id, r.Status, r.Reason, left)
			}
			delete(left, r.Id)
		}
	}
	expect := func(st pb.Status, ids ...int) {
		t.Helper()
		want := map[int]pb.Status{}
		for _, i := range ids {
			want[i] = st
		}
		replies(want)
	}

	// Chunks 0..fill-1 fill the stream's buffer; chunk fill waits for its
	// data behind them.
	held := fill
	var filling []int
	for i := range fill {
		filling = append(filling, i)
		send(request(i))
	}
	send(request(held))
	expect(pb.Status_STATUS_AGREED, append(filling, held)...)
	for _, i := range filling {
		send(segments(i))
	}
	expect(pb.Status_STATUS_SEGMENTS_OK, filling...)
	for _, i := range filling {
		send(dataFrame(i))
	}
	// The provider read all their data, holds MaxStreamBuffered bytes for
	// the disk and reads no more.
	select {
	case <-waiting:
	case <-ctx.Done():
		t.Fatal("the provider did not stop reading with MaxStreamBuffered bytes waiting for its disk")
	}
	// Another request, no data, waits unread; the disk takes longer than
	// IdleTimeout, the waiting exchange as long.
	send(request(fill + 1))
	clock.add(store.IdleTimeout + time.Second)
	open()
	// The chunks are stored and the request agreed; a waiting exchange
	// given up would be answered FAILED among these replies or before the
	// next.
	want := map[int]pb.Status{fill + 1: pb.Status_STATUS_AGREED}
	for _, i := range filling {
		want[i] = pb.Status_STATUS_DATA_RECEIVED
	}
	replies(want)

	// The exchange that waited while the provider's disk was slow goes on.
	send(segments(held))
	expect(pb.Status_STATUS_SEGMENTS_OK, held)
	send(dataFrame(held))
	expect(pb.Status_STATUS_DATA_RECEIVED, held)
	if has, err := bs.Has(res.res.Chunks[held].CID); err != nil || !has {
		t.Fatalf("the chunk that waited is not stored (%v, %v)", has, err)
	}
}
