package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// TestCloseNotHeldByChattyProvider: a provider that keeps answering an
// exchange the uploader gave up on (SEGMENTS_OK after SEGMENTS_OK, each of
// which renewed the read deadline) cannot hold Close: past the replies an
// exchange can have, the stream is a protocol error and is reset.
func TestCloseNotHeldByChattyProvider(t *testing.T) {
	net := testnet.New(t, 2)
	done, gaveUp := make(chan struct{}), make(chan struct{})
	defer close(done)
	net.Host(1).Libp2p().SetStreamHandler(p2p.StoreProtocol, func(s network.Stream) {
		defer s.Reset()
		fr := p2p.NewFrameReader(s, store.MaxFrame)
		fw := p2p.NewFrameWriter(s)
		var req pb.StoreRequest
		if err := fr.ReadMsg(&req); err != nil {
			return
		}
		if fw.WriteMsg(&pb.StoreReply{Id: req.Id, Status: pb.Status_STATUS_AGREED}) != nil || fw.Flush() != nil {
			return
		}
		// The uploader sends segments, data and SIGN; the provider answers
		// SEGMENTS_OK, then nothing until the uploader gave up waiting,
		// then SEGMENTS_OK again and again.
		for {
			var r pb.StoreRequest
			if err := fr.ReadMsg(&r); err != nil {
				return
			}
			if r.GetSign() != nil {
				break
			}
		}
		go func() { // drain what the uploader sends
			for {
				var r pb.StoreRequest
				if err := fr.ReadMsg(&r); err != nil {
					return
				}
			}
		}()
		if fw.WriteMsg(&pb.StoreReply{Id: req.Id, Status: pb.Status_STATUS_SEGMENTS_OK}) != nil || fw.Flush() != nil {
			return
		}
		select {
		case <-gaveUp:
		case <-done:
			return
		}
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			if fw.WriteMsg(&pb.StoreReply{Id: req.Id, Status: pb.Status_STATUS_SEGMENTS_OK}) != nil || fw.Flush() != nil {
				return
			}
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := store.Open(ctx, net.Host(0).Libp2p(), net.Host(1).ID())
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("some chunk bytes")
	pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = st.Push(pctx, store.ChunkPush{Bag: "dynamic:channel:1", Object: 1, CID: chunker.ChunkCID(data), Data: data})
	pcancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("push to a provider that never stores: %v", err)
	}
	close(gaveUp)
	closed := make(chan struct{})
	go func() { _ = st.Close(); close(closed) }()
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close held by a provider that keeps replying")
	}
	if _, err := st.Push(ctx, store.ChunkPush{Bag: "dynamic:channel:1", Object: 1, CID: chunker.ChunkCID(data), Data: data}); !errors.Is(err, store.ErrProtocol) && !errors.Is(err, store.ErrStreamClosed) {
		t.Fatalf("push on the stream after: %v", err)
	}
}
