package fetch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
	satnet "github.com/satchel-net/satchel/testnet"
)

// bytes_out_total counts the block bytes of replies written, not of
// replies prepared: a reader that asks for blocks, reads nothing and
// resets its stream (as a peer cycling streams does) was sent none of
// them, and the provider charges them as abandoned instead. A Client that
// reads its blocks is counted each block once.
func TestFetchBytesOutCountsSent(t *testing.T) {
	held := int64(fetch.MaxHeldGETs) * fetch.GetMemory
	net, reg, cids := busyEnv(t, 2, p2p.MemoryLimits{}, fetch.WithStallEviction(-1))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := net.Host(1).Libp2p().NewStream(ctx, net.Host(0).ID(), p2p.FetchProtocol)
	if err != nil {
		t.Fatal(err)
	}
	fw := p2p.NewFrameWriter(s)
	for i, c := range cids {
		_ = fw.WriteMsg(&pb.FetchRequest{Id: uint64(i + 1), Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: c.Bytes()}}})
	}
	if err := fw.Flush(); err != nil {
		t.Fatal(err)
	}
	// Two 1 MiB replies prepared, their write stopped by flow control.
	waitFetchMemory(t, net.Host(0), held)
	satnet.Wait(t, "two replies prepared", func() bool {
		return counter(t, reg, "satchel_provider_fetch_requests_total", "kind", "get", "status", "ok") >= fetch.MaxHeldGETs
	})
	_ = s.Reset()
	satnet.Wait(t, "the reset stream's replies charged", func() bool {
		return counter(t, reg, "satchel_provider_fetch_abandoned_bytes_total") > 0
	})
	if n := counter(t, reg, "satchel_provider_fetch_bytes_out_total"); n != 0 {
		t.Fatalf("bytes_out_total %v after a reader reset its stream unread, want 0", n)
	}

	f := fetch.NewClient(net.Host(1).Libp2p())
	defer f.Close()
	for _, c := range cids[:2] {
		if _, err := f.GetBlock(ctx, net.Host(0).ID(), c); err != nil {
			t.Fatal(err)
		}
	}
	// The provider counts a reply after its Flush, which may come after
	// the client has the block: wait for the count, then check it exact.
	satnet.Wait(t, "two read blocks counted", func() bool {
		return counter(t, reg, "satchel_provider_fetch_bytes_out_total") >= 2<<20
	})
	if n := counter(t, reg, "satchel_provider_fetch_bytes_out_total"); n != 2<<20 {
		t.Fatalf("bytes_out_total %v after two 1 MiB blocks read, want %d", n, 2<<20)
	}
}

// A reply shorter than the range it answers is reported with the bytes it
// carried, counted before the reply goes back to the pool (which empties it).
func TestFetchShortReplyCountsItsBytes(t *testing.T) {
	net := testnet.New(t, 2)
	data := make([]byte, 100)
	c := chunker.ChunkCID(data)
	net.Host(0).Libp2p().SetStreamHandler(p2p.FetchProtocol, func(s network.Stream) {
		defer s.Close()
		var req pb.FetchRequest
		if err := p2p.NewFrameReader(s, fetch.MaxFrame).ReadMsg(&req); err != nil {
			return
		}
		fw := p2p.NewFrameWriter(s)
		_ = fw.WriteMsg(&pb.FetchReply{Id: req.Id, Status: pb.FetchStatus_FETCH_STATUS_OK, Size: 100, Data: data[:50]})
		_ = fw.Flush()
	})
	f := fetch.NewClient(net.Host(1).Libp2p())
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := f.GetBlock(ctx, net.Host(0).ID(), c)
	if err == nil || !strings.Contains(err.Error(), "sent 50 bytes") || !errors.Is(err, fetch.ErrProtocol) {
		t.Fatalf("a 50-byte reply of a 100-byte block: %v; want a protocol error saying 50 bytes were sent", err)
	}
}
