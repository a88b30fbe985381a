package store_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// spAnswer is the receipt an honest provider gives for chunk request cr:
// its chunk, object and bag, its session for an unregistered object's
// chunk, and its nonce (unsigned).
func spAnswer(cr *pb.StoreChunkRequest) *pb.Receipt {
	r := &pb.Receipt{Cid: cr.Cid, ObjectId: cr.ObjectId, BagId: cr.BagId,
		StoredAtUnix: time.Now().Unix(), ExpiryUnix: cr.ExpiryUnix, Nonce: cr.Nonce}
	if cr.ObjectId == 0 {
		r.Session = cr.Session
	}
	return r
}

// spSigned signs r with key (t.Error on failure: it may run on a handler's
// goroutine) and returns it.
func spSigned(t *testing.T, key crypto.PrivKey, r *pb.Receipt) *pb.Receipt {
	if err := store.SignReceipt(key, r); err != nil {
		t.Error(err)
	}
	return r
}

// spSession is a 16-byte streamed-upload session filled with b.
func spSession(b byte) []byte { return bytes.Repeat([]byte{b}, store.SessionIDLength) }

// TestReceiptBoundToPush: a real provider's receipt names the session a
// streamed upload's chunk was pushed under (none for a registered object's
// chunk) and echoes the push's nonce, fresh for every push; the signature
// covers both, and a receipt signed in the v1 format (without them) does
// not verify.
func TestReceiptBoundToPush(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s := e.open(t)
	data := spRand(40, 3000)
	c := chunker.ChunkCID(data)
	sess := spSession(0x5a)
	first, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: c, Data: data, Session: sess})
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: c, Data: data, Session: sess})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []*pb.Receipt{first, again} {
		if !bytes.Equal(r.Session, sess) || len(r.Nonce) != store.NonceLength {
			t.Fatalf("receipt names session %x and nonce %x, want session %x and a %d-byte nonce", r.Session, r.Nonce, sess, store.NonceLength)
		}
	}
	if bytes.Equal(first.Nonce, again.Nonce) {
		t.Fatalf("two pushes of the same chunk share the nonce %x", first.Nonce)
	}
	e.auth.register(1, spBag, c, uint64(len(data))) // a one-chunk object
	obj, err := s.Push(ctx, store.ChunkPush{Bag: spBag, Object: 1, CID: c, Data: data, Session: sess})
	if err != nil {
		t.Fatal(err)
	}
	if len(obj.Session) != 0 || len(obj.Nonce) != store.NonceLength {
		t.Fatalf("registered object's receipt names session %x and nonce %x, want no session and a nonce", obj.Session, obj.Nonce)
	}
	for name, tamper := range map[string]func(r *pb.Receipt){
		"session":    func(r *pb.Receipt) { r.Session = spSession(0x5b) },
		"no session": func(r *pb.Receipt) { r.Session = nil },
		"nonce":      func(r *pb.Receipt) { r.Nonce = again.Nonce },
	} {
		r := proto.Clone(first).(*pb.Receipt)
		tamper(r)
		if err := store.VerifyReceipt(r, e.provider.ID()); !errors.Is(err, store.ErrBadReceipt) {
			t.Errorf("tampered %s: VerifyReceipt = %v", name, err)
		}
	}
	// A v1 receipt: the same statement signed without session and nonce
	// under the old domain string.
	key := e.provider.Peerstore().PrivKey(e.provider.ID())
	v1 := &pb.Receipt{Cid: c.Bytes(), ObjectId: 1, BagId: spBag, Provider: []byte(e.provider.ID()), StoredAtUnix: 1, ExpiryUnix: 2}
	if v1.Signature, err = key.Sign(receiptBytesV1(v1)); err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyReceipt(v1, e.provider.ID()); !errors.Is(err, store.ErrBadReceipt) {
		t.Fatalf("v1 receipt: VerifyReceipt = %v, want ErrBadReceipt", err)
	}
}

// receiptBytesV1 is what a v1 receipt's signature covered.
func receiptBytesV1(r *pb.Receipt) []byte {
	b := []byte("satchel-receipt/v1\n")
	app := func(p []byte) { b = append(binary.AppendUvarint(b, uint64(len(p))), p...) }
	app(r.Cid)
	b = binary.BigEndian.AppendUint64(b, r.ObjectId)
	app([]byte(r.BagId))
	app(r.Provider)
	b = binary.BigEndian.AppendUint64(b, uint64(r.StoredAtUnix))
	return binary.BigEndian.AppendUint64(b, uint64(r.ExpiryUnix))
}

// TestPushRefusesUnboundReceipt: a provider that answers a direct push with
// a receipt it really signed for the chunk, but under another session, or
// with another push's nonce (a receipt it kept from an earlier push), or
// with none, fails the push with ErrBadReceipt; the receipt answering the
// push passes.
func TestPushRefusesUnboundReceipt(t *testing.T) {
	e := newSPEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := e.provider.Peerstore().PrivKey(e.provider.ID())
	data := spRand(41, 5000)
	c := chunker.ChunkCID(data)
	sess := spSession(0x11)
	for _, tc := range []struct {
		name string
		own  func(cr *pb.StoreChunkRequest) *pb.Receipt
		want string // in the error; "" for success
	}{
		{"answers the push", spAnswer, ""},
		{"other session", func(cr *pb.StoreChunkRequest) *pb.Receipt {
			r := spAnswer(cr)
			r.Session = spSession(0x22)
			return r
		}, "session"},
		{"no session", func(cr *pb.StoreChunkRequest) *pb.Receipt {
			r := spAnswer(cr)
			r.Session = nil
			return r
		}, "session"},
		{"earlier push's nonce", func(cr *pb.StoreChunkRequest) *pb.Receipt {
			r := spAnswer(cr)
			r.Nonce = bytes.Repeat([]byte{0xee}, store.NonceLength)
			return r
		}, "nonce"},
		{"no nonce", func(cr *pb.StoreChunkRequest) *pb.Receipt {
			r := spAnswer(cr)
			r.Nonce = nil
			return r
		}, "nonce"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			served := make(chan error, 1)
			e.provider.SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
				defer s.Close()
				served <- spScriptAnswer(s, key, tc.own, func(*pb.StoreChunkRequest) []*pb.Receipt { return nil })
			})
			s := e.open(t)
			rc, err := s.Push(ctx, store.ChunkPush{Bag: spBag, CID: c, Data: data, Session: sess})
			if srvErr := <-served; srvErr != nil {
				t.Fatalf("scripted provider: %v", srvErr)
			}
			if tc.want == "" {
				if err != nil || !bytes.Equal(rc.Session, sess) {
					t.Fatalf("push: %v, receipt %v", err, rc)
				}
				return
			}
			if !errors.Is(err, store.ErrBadReceipt) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("push: %v, want ErrBadReceipt naming the %s", err, tc.want)
			}
			t.Logf("%s: %v", tc.name, err)
		})
	}
}

// TestProviderRefusesBadNonce: a chunk request whose nonce is neither empty
// nor NonceLength bytes is refused, with the reason.
func TestProviderRefusesBadNonce(t *testing.T) {
	e := newSPEnv(t)
	data := spRand(42, 100)
	raw := spRawStream(t, e)
	req := &pb.StoreRequest{Id: 1, Body: &pb.StoreRequest_Request{Request: &pb.StoreChunkRequest{
		BagId: spBag, Cid: chunker.ChunkCID(data).Bytes(), Length: uint64(len(data)), Session: spSession(1),
		Nonce: make([]byte, store.NonceLength+1),
	}}}
	if err := p2p.WriteMsg(raw, req); err != nil {
		t.Fatal(err)
	}
	if r := spExpect(t, raw, pb.Status_STATUS_REFUSED); !strings.Contains(r.Reason, "nonce") {
		t.Fatalf("reason %q, want it to name the nonce", r.Reason)
	}
}

// TestPipelineHeadReplaysReceipt: the chunk of an unregistered object went
// to provider 2 in an earlier upload (session A); now, pushed through a
// lying head (provider 1) that forwards nothing, the head relays provider
// 2's genuine receipt from then instead. Whether the new upload runs under
// another session (B) or the same one (a new push: another nonce), the
// uploader refuses it with ErrBadReceipt rather than count a replica made
// by this push; a receipt provider 2 signed for this push passes.
func TestPipelineHeadReplaysReceipt(t *testing.T) {
	e := newPLEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	head, next := e.net.Host(1).Libp2p(), e.net.Host(2).Libp2p()
	data := spRand(43, 64<<10)
	c := chunker.ChunkCID(data)
	sessA, sessB := spSession(0xa), spSession(0xb)
	old, err := e.open(t, 2).Push(ctx, store.ChunkPush{Bag: spBag, CID: c, Data: data, Session: sessA})
	if err != nil {
		t.Fatal(err)
	}
	nextKey := next.Peerstore().PrivKey(next.ID())
	fresh := func(cr *pb.StoreChunkRequest) []*pb.Receipt {
		r := spAnswer(cr)
		r.Session = cr.Forward[0].Session // next's own session
		return []*pb.Receipt{spSigned(t, nextKey, r)}
	}
	replay := func(*pb.StoreChunkRequest) []*pb.Receipt { return []*pb.Receipt{old} }
	var relay atomic.Pointer[func(*pb.StoreChunkRequest) []*pb.Receipt]
	head.SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
		defer s.Close()
		_ = spScriptRelay(s, head.Peerstore().PrivKey(head.ID()), *relay.Load())
	})
	for _, tc := range []struct {
		name    string
		sess    []byte
		relay   func(*pb.StoreChunkRequest) []*pb.Receipt
		wantErr string // in the error; "" for success
	}{
		{"replayed from session A into session B", sessB, replay, "session"},
		{"replayed from an earlier push of session A", sessA, replay, "nonce"},
		{"signed for this push", sessB, fresh, ""},
	} {
		relay.Store(&tc.relay)
		s := e.open(t, 1)
		hops := e.hops(2)
		hops[0].Session = tc.sess
		res, err := s.PushPipeline(ctx, store.ChunkPush{Bag: spBag, CID: c, Data: data, Session: tc.sess, Forward: hops})
		_ = s.Close()
		if tc.wantErr == "" {
			if err != nil || len(res.Receipts) != 2 || res.Receipts[1].Peer != next.ID() {
				t.Fatalf("%s: %v, receipts %v", tc.name, err, res.Receipts)
			}
			continue
		}
		if !errors.Is(err, store.ErrBadReceipt) || !strings.Contains(err.Error(), tc.wantErr) {
			t.Fatalf("%s: err %v, want ErrBadReceipt naming the %s", tc.name, err, tc.wantErr)
		}
		t.Logf("%s: %v", tc.name, err)
	}
}

// TestPipelineMiddleHopReplaysReceipt: a real head forwards to a lying
// middle hop (provider 2) that relays provider 3's receipt from an earlier
// upload instead of forwarding. The head's relay refuses it, reports the
// middle hop failed and forwards to provider 3 itself: the uploader gets
// the head's and provider 3's fresh receipts (both answering its push's
// nonce, provider 3's naming its session B), and provider 2 in Failed.
func TestPipelineMiddleHopReplaysReceipt(t *testing.T) {
	e := newPLEnv(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	mid := e.net.Host(2).Libp2p()
	data := spRand(44, 100<<10)
	c := chunker.ChunkCID(data)
	sessA, sessB := spSession(0xa), spSession(0xb)
	old, err := e.open(t, 3).Push(ctx, store.ChunkPush{Bag: spBag, CID: c, Data: data, Session: sessA})
	if err != nil {
		t.Fatal(err)
	}
	mid.SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
		defer s.Close()
		_ = spScriptRelay(s, mid.Peerstore().PrivKey(mid.ID()), func(*pb.StoreChunkRequest) []*pb.Receipt { return []*pb.Receipt{old} })
	})
	hops := e.hops(2, 3)
	for i := range hops {
		hops[i].Session = sessB
	}
	r, err := e.open(t, 1).PushPipeline(ctx, store.ChunkPush{Bag: spBag, CID: c, Data: data, Session: sessB, Forward: hops})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Receipts) != 2 || r.Receipts[0].Peer != e.id(1) || r.Receipts[1].Peer != e.id(3) {
		t.Fatalf("receipts %v, want providers 1 and 3", r.Receipts)
	}
	head, third := r.Receipts[0].Receipt, r.Receipts[1].Receipt
	if !bytes.Equal(third.Session, sessB) || !bytes.Equal(third.Nonce, head.Nonce) || bytes.Equal(third.Nonce, old.Nonce) {
		t.Fatalf("provider 3's receipt names session %x and nonce %x; want session B and the head's nonce %x", third.Session, third.Nonce, head.Nonce)
	}
	if len(r.Failed) != 1 || r.Failed[0].Peer != e.id(2) || !strings.Contains(r.Failed[0].Err.Error(), "invalid receipt") {
		t.Fatalf("failed %v, want provider 2 with a reason naming the invalid receipt", r.Failed)
	}
	t.Logf("hop 2: %v", r.Failed[0].Err)
}
