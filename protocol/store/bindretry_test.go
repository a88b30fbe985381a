package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// unrecordedAuth is spAuth whose SessionBound fails while fails is above
// zero, as a provider whose contract store cannot write.
type unrecordedAuth struct {
	*spAuth
	mu    sync.Mutex
	fails int
	calls int
}

func (a *unrecordedAuth) SessionBound([]byte, uint64) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.fails > 0 {
		a.fails--
		return errors.New("leveldb: closed")
	}
	return nil
}

// A BIND whose contract the provider cannot record is answered FAILED with
// retry set, the object recorded and handed to the node to accept on chain
// all the same (it is held from then on, whether or not the uploader binds
// again); the BIND repeated is BOUND. A BIND missing a chunk says retry
// false (TestStoreRefusals).
func TestBindUnrecordedContractAsksRetry(t *testing.T) {
	net := testnet.New(t, 2)
	auth := &unrecordedAuth{spAuth: &spAuth{objects: map[uint64]spObject{}, quota: 1 << 30}, fails: 1}
	bound := make(chan uint64, 4)
	bs := serveStore(t, net, 1, auth, store.WithObjectBound(func(_ string, obj uint64) { bound <- obj }))

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := spRand(61, 300<<10)
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(128<<10))
	if err != nil {
		t.Fatal(err)
	}
	s, err := store.Open(ctx, net.Host(0).Libp2p(), net.Host(1).ID())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	session := bytes.Repeat([]byte{9}, store.SessionIDLength)
	for i, c := range res.Chunks {
		if _, err := s.Push(ctx, store.ChunkPush{Bag: spBag, Index: i, CID: c.CID, Data: data[c.Offset : c.Offset+int64(c.Size)], Session: session}); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	auth.register(8, spBag, res.Root, uint64(res.Size))
	bind := store.BindRequest{Session: session, Bag: spBag, Object: 8, Chunks: res.Chunks}

	err = s.Bind(ctx, bind)
	var re *store.RefusedError
	if !errors.As(err, &re) || re.Status != pb.Status_STATUS_FAILED || !re.RetrySaid || !re.Retry || re.NoSpace {
		t.Fatalf("bind with the contract unrecorded: %v (%+v); want FAILED with retry set", err, re)
	}
	if _, ok, err := bs.Manifest(8); err != nil || !ok {
		t.Fatalf("object not recorded before the contract failed (%v)", err)
	}
	select {
	case obj := <-bound:
		if obj != 8 {
			t.Fatalf("object %d handed on, want 8", obj)
		}
	default:
		t.Fatal("the recorded object was not handed to the node to accept (WithObjectBound) when its contract failed")
	}

	if err := s.Bind(ctx, bind); err != nil {
		t.Fatalf("bind again: %v", err)
	}
	auth.mu.Lock()
	calls := auth.calls
	auth.mu.Unlock()
	if calls != 2 || len(bound) != 1 {
		t.Fatalf("SessionBound called %d times, ObjectBound %d more; want 2 and 1", calls, len(bound))
	}
}

// A peer built before retry (StoreReply without field 9) decodes a FAILED
// BIND reply carrying it as the FAILED it is, with its reason: the field
// is one it skips. Its presence is on the wire when false too, so a peer
// that knows it tells "false" from "not said" (an older provider's).
func TestBindRetryOlderPeerSkipsIt(t *testing.T) {
	desc := olderStoreReply(t, "retry")
	for _, retry := range []bool{true, false} {
		b, err := proto.Marshal(&pb.StoreReply{Id: 7, Status: pb.Status_STATUS_FAILED, Reason: "bind again", Retry: proto.Bool(retry)})
		if err != nil {
			t.Fatal(err)
		}
		status, reason, skipped := decodeAsOlder(t, desc, b)
		if status != pb.Status_STATUS_FAILED.Number() || reason != "bind again" {
			t.Fatalf("older peer reads status %d, reason %q; want FAILED, bind again", status, reason)
		}
		if !skipped {
			t.Fatalf("retry %v is not on the wire as a field the older peer skips", retry)
		}
		var back pb.StoreReply
		if err := proto.Unmarshal(b, &back); err != nil || back.Retry == nil || back.GetRetry() != retry {
			t.Fatalf("retry %v read back as %v (%v)", retry, back.Retry, err)
		}
	}
}
