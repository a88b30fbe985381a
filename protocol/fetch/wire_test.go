package fetch_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// The answers docs/PROTOCOL.md ("Answers, case by case") promises, checked
// on the wire: raw frames on a real stream, pipelined, then a half-close.
func TestFetchWireEdgeCases(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	data := benchutil.Rand(3, 1000)
	c := chunker.ChunkCID(data)
	if err := e.bs.Put(c, data); err != nil {
		t.Fatal(err)
	}
	blocked := chunker.ChunkCID([]byte("held, not served"))
	if err := e.bs.Put(blocked, []byte("held, not served")); err != nil {
		t.Fatal(err)
	}
	e.policy.blocked.Store(blocked, true)
	absent := chunker.ChunkCID([]byte("absent"))
	get := func(id uint64, cb []byte, off, n uint64) *pb.FetchRequest {
		return &pb.FetchRequest{Id: id, Body: &pb.FetchRequest_Get{Get: &pb.GetRequest{Cid: cb, Offset: off, Length: n}}}
	}
	size := uint64(len(data))
	cases := []struct {
		name string
		req  *pb.FetchRequest
		want *pb.FetchReply
	}{
		{"no body", &pb.FetchRequest{Id: 1}, &pb.FetchReply{Id: 1, Status: pb.FetchStatus_FETCH_STATUS_REFUSED}},
		{"get undecodable CID", get(2, []byte("xyz"), 0, 0), &pb.FetchReply{Id: 2, Status: pb.FetchStatus_FETCH_STATUS_REFUSED}},
		{"get CID with trailing byte", get(3, append(c.Bytes(), 0), 0, 0), &pb.FetchReply{Id: 3, Status: pb.FetchStatus_FETCH_STATUS_REFUSED}},
		{"get empty CID", get(4, nil, 0, 0), &pb.FetchReply{Id: 4, Status: pb.FetchStatus_FETCH_STATUS_REFUSED}},
		{"have", &pb.FetchRequest{Id: 5, Body: &pb.FetchRequest_Have{Have: &pb.HaveRequest{Cids: [][]byte{[]byte("xyz"), c.Bytes(), absent.Bytes(), blocked.Bytes()}}}},
			&pb.FetchReply{Id: 5, Status: pb.FetchStatus_FETCH_STATUS_OK, Have: []bool{false, true, false, false}}},
		{"get absent", get(7, absent.Bytes(), 0, 0), &pb.FetchReply{Id: 7, Status: pb.FetchStatus_FETCH_STATUS_NOT_FOUND}},
		{"get not served", get(8, blocked.Bytes(), 0, 0), &pb.FetchReply{Id: 8, Status: pb.FetchStatus_FETCH_STATUS_NOT_FOUND}},
		{"offset = size", get(9, c.Bytes(), size, 0), &pb.FetchReply{Id: 9, Status: pb.FetchStatus_FETCH_STATUS_OK, Size: size}},
		{"offset > size", get(10, c.Bytes(), size+1, 0), &pb.FetchReply{Id: 10, Status: pb.FetchStatus_FETCH_STATUS_REFUSED, Size: size}},
		{"length 0", get(11, c.Bytes(), 10, 0), &pb.FetchReply{Id: 11, Status: pb.FetchStatus_FETCH_STATUS_OK, Data: data[10:], Size: size}},
		{"length 5", get(12, c.Bytes(), 10, 5), &pb.FetchReply{Id: 12, Status: pb.FetchStatus_FETCH_STATUS_OK, Data: data[10:15], Size: size}},
		{"length past the end", get(13, c.Bytes(), 990, 100), &pb.FetchReply{Id: 13, Status: pb.FetchStatus_FETCH_STATUS_OK, Data: data[990:], Size: size}},
		{"reused id", get(1, c.Bytes(), 0, 1), &pb.FetchReply{Id: 1, Status: pb.FetchStatus_FETCH_STATUS_OK, Data: data[:1], Size: size}},
	}
	s, err := e.reader.NewStream(ctx, e.server.ID(), p2p.FetchProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(time.Minute))
	// All requests first (more than the provider prepares at once), then
	// a half-close: the provider answers every one, in order, and closes.
	for _, tc := range cases {
		if err := p2p.WriteMsg(s, tc.req); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		var got pb.FetchReply
		if err := p2p.ReadMsg(s, &got, fetch.MaxFrame); err != nil {
			t.Fatalf("%s: read reply: %v", tc.name, err)
		}
		if got.Id != tc.want.Id || got.Status != tc.want.Status || got.Size != tc.want.Size ||
			!bytes.Equal(got.Data, tc.want.Data) || !equalFlags(got.Have, tc.want.Have) {
			t.Errorf("%s: got id %d %v size %d data %d bytes have %v (%s); want id %d %v size %d data %d bytes have %v",
				tc.name, got.Id, got.Status, got.Size, len(got.Data), got.Have, got.Reason,
				tc.want.Id, tc.want.Status, tc.want.Size, len(tc.want.Data), tc.want.Have)
		}
	}
	var extra pb.FetchReply
	if err := p2p.ReadMsg(s, &extra, fetch.MaxFrame); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last reply: %v, want the provider to close the stream (EOF)", err)
	}
}

func equalFlags(a, b []bool) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The example frames of docs/PROTOCOL.md ("Messages"), byte for byte: a GET
// and a HAVE of the empty chunk, and the provider's exact replies. An empty,
// zero-length frame is a request with no body.
func TestFetchWireDocumentedFrames(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	empty, err := cid.Decode("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.bs.Put(empty, []byte{}); err != nil {
		t.Fatal(err)
	}
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	const emptyCID = "01551220e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	if hex.EncodeToString(empty.Bytes()) != emptyCID {
		t.Fatalf("empty chunk CID bytes = %x", empty.Bytes())
	}
	s, err := e.reader.NewStream(ctx, e.server.ID(), p2p.FetchProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	_ = s.SetDeadline(time.Now().Add(time.Minute))
	var out []byte
	out = append(out, unhex("2a08011a260a24"+emptyCID)...) // GET, id 1
	out = append(out, unhex("2a080212260a24"+emptyCID)...) // HAVE, id 2
	out = append(out, 0x00)                                // an empty frame: no body, id 0
	if _, err := s.Write(out); err != nil {
		t.Fatal(err)
	}
	if err := s.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	want := unhex("0408011001" + "0708021001220101")
	if !bytes.HasPrefix(got, want) {
		t.Fatalf("replies = %x, want them to start with %x", got, want)
	}
	var last pb.FetchReply
	if err := p2p.ReadMsg(bytes.NewReader(got[len(want):]), &last, fetch.MaxFrame); err != nil {
		t.Fatal(err)
	}
	if last.Id != 0 || last.Status != pb.FetchStatus_FETCH_STATUS_REFUSED || last.Size != 0 {
		t.Fatalf("empty frame answered %v", &last)
	}
}
