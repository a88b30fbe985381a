package fetch_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// haveFlood is a FetchRequest frame (length prefix included) of a HAVE of
// n empty CIDs: two bytes each on the wire, a slice header each decoded.
func haveFlood(n int) []byte {
	inner := make([]byte, 0, 2*n)
	for range n {
		inner = append(inner, 0x0a, 0x00)
	}
	var body []byte
	body = protowire.AppendTag(body, 1, protowire.VarintType)
	body = protowire.AppendVarint(body, 1)
	body = protowire.AppendTag(body, 2, protowire.BytesType)
	body = protowire.AppendBytes(body, inner)
	return protowire.AppendBytes(nil, body)
}

// A HAVE flood — a request frame of thousands of empty CIDs, which
// protobuf would decode into many times its size — resets the stream
// before it is decoded and is counted, whether it is as large as a reply
// may be (over the request frame limit: refused at its length prefix) or
// within the request frame limit (over the CID count: refused on the
// wire). A HAVE of exactly MaxHaveCIDs CIDs is still answered, and so is
// the next stream.
func TestFetchHaveFloodResetsStream(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cases := []struct {
		name  string
		frame []byte
	}{
		{"4 MiB flood", haveFlood((fetch.MaxFrame - 64) / 2)},
		{"flood within the request frame limit", haveFlood((fetch.MaxRequestFrame - 64) / 2)},
		{"one CID over the limit", haveFlood(fetch.MaxHaveCIDs + 1)},
	}
	for _, tc := range cases {
		before := counter(t, e.reg, "satchel_provider_fetch_requests_total", "kind", "malformed", "status", "refused")
		s, err := e.reader.NewStream(ctx, e.server.ID(), p2p.FetchProtocol)
		if err != nil {
			t.Fatal(err)
		}
		_ = s.SetDeadline(time.Now().Add(time.Minute))
		if _, err := s.Write(tc.frame); err != nil && !errors.Is(err, network.ErrReset) {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		var r pb.FetchReply
		if err := p2p.ReadMsg(s, &r, fetch.MaxFrame); err == nil {
			t.Fatalf("%s: answered %v (%s), want the stream reset", tc.name, r.Status, r.Reason)
		} else if !errors.Is(err, network.ErrReset) {
			t.Fatalf("%s: read: %v, want the stream reset", tc.name, err)
		}
		_ = s.Reset()
		if tc.frame[0]&0x80 != 0 && len(tc.frame) > (80<<10) {
			continue // refused at its length prefix by the frame reader
		}
		if got := counter(t, e.reg, "satchel_provider_fetch_requests_total", "kind", "malformed", "status", "refused"); got != before+1 {
			t.Fatalf("%s: malformed requests counted %v, want %v", tc.name, got, before+1)
		}
	}
	if got := counter(t, e.p2pReg, "satchel_p2p_frame_errors_total", "protocol", string(p2p.FetchProtocol), "kind", "too_large"); got < 1 {
		t.Fatalf("frames too large counted %v, want at least 1", got)
	}
	if got := counter(t, e.p2pReg, "satchel_p2p_frame_errors_total", "protocol", string(p2p.FetchProtocol), "kind", "decode"); got < 2 {
		t.Fatalf("frames refused before decoding counted %v, want at least 2", got)
	}

	// The largest honest HAVE: MaxHaveCIDs CIDs, answered one flag each.
	cids := make([]cid.Cid, fetch.MaxHaveCIDs)
	for i := range cids {
		cids[i] = chunker.ChunkCID([]byte{byte(i), byte(i >> 8)})
	}
	have, err := e.fetch.Have(ctx, e.server.ID(), cids)
	if err != nil || len(have) != len(cids) {
		t.Fatalf("Have of %d CIDs = %d flags, %v", len(cids), len(have), err)
	}
}

// A provider answering a HAVE with more flags than a HAVE may ask about —
// packed into one 4 MiB field, or unpacked two bytes a flag — is refused
// before its reply is decoded: Have fails with ErrProtocol.
func TestFetchClientRefusesHaveFlood(t *testing.T) {
	unpacked := func(n int) []byte {
		var b []byte
		for range n {
			b = append(b, 0x20, 0x01) // have: true
		}
		return b
	}
	cases := []struct {
		name  string
		flags []byte // the reply's have fields, on the wire
	}{
		{"packed 4 MiB", protowire.AppendBytes([]byte{0x22}, make([]byte, fetch.MaxFrame-64))},
		{"unpacked", unpacked((fetch.MaxFrame - 64) / 2)},
		{"packed, one over", protowire.AppendBytes([]byte{0x22}, make([]byte, fetch.MaxHaveCIDs+1))},
	}
	for _, tc := range cases {
		net := testnet.New(t, 2)
		liar := net.Host(1).Libp2p()
		liar.SetStreamHandler(p2p.FetchProtocol, func(s network.Stream) {
			defer s.Close()
			var req pb.FetchRequest
			if err := p2p.ReadMsg(s, &req, 0); err != nil {
				return
			}
			var body []byte
			body = protowire.AppendTag(body, 1, protowire.VarintType)
			body = protowire.AppendVarint(body, req.Id)
			body = protowire.AppendTag(body, 2, protowire.VarintType)
			body = protowire.AppendVarint(body, uint64(pb.FetchStatus_FETCH_STATUS_OK))
			body = append(body, tc.flags...)
			_, _ = s.Write(protowire.AppendBytes(nil, body))
		})
		f := fetch.NewClient(net.Host(0).Libp2p())
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_, err := f.Have(ctx, liar.ID(), []cid.Cid{chunker.ChunkCID([]byte("x"))})
		cancel()
		_ = f.Close()
		if !errors.Is(err, fetch.ErrProtocol) {
			t.Fatalf("%s: Have = %v, want ErrProtocol", tc.name, err)
		}
		// Refused by the check before decoding, not by Have's count of
		// the flags it decoded (which would refuse the reply too).
		if msg := err.Error(); !strings.Contains(msg, "refused before decoding") && !strings.Contains(msg, "HAVE flags, over") {
			t.Fatalf("%s: Have = %v; want the reply refused before it was decoded", tc.name, err)
		}
	}
}
