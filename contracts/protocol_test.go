package contracts

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// TestProtocolLimits checks the handler side against bad frames: a frame
// above MaxFrame is refused before its body is read (the stream is reset
// and nothing is stored), a CONSIGN of a contract never offered and an
// OFFER for a proposal not open are refused with their codes.
func TestProtocolLimits(t *testing.T) {
	net := testnet.NewMock(t, 2, 0)
	st, err := OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	prov := net.Host(0)
	r, err := NewResponder(prov, NewGossip(prov, nil, quiet()), Identity{Key: seedKey(t, 2), Worker: 1, Bucket: 1}, nil, nil, st, WithLogger(quiet()))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := net.Host(1)

	s, err := client.Protocol().NewStream(ctx, prov.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	hdr := protowire.AppendVarint(nil, MaxFrame+1)
	if _, err := s.Write(append(hdr, make([]byte, 64)...)); err != nil {
		t.Fatal(err)
	}
	var resp pb.Response
	if err := client.Protocol().ReadMsg(s, &resp, MaxFrame); err == nil {
		t.Fatalf("oversized frame answered with %v", &resp)
	}
	_ = s.Reset()

	c, renter, provKey := fixedContract(t)
	c.ProviderPeer = prov.ID()
	c.SignAsProvider(provKey)
	c.SignAsRenter(renter)
	got, err := exchange(ctx, client, prov.ID(), &pb.Request{Body: &pb.Request_Consign{Consign: &pb.Consign{Contract: c.ToPB()}}})
	if err != nil || got.GetRefusal().GetCode() != pb.Code_CODE_UNKNOWN {
		t.Fatalf("CONSIGN of a contract never offered: %v, %v; want CODE_UNKNOWN", got, err)
	}
	if all, _ := st.List(); len(all) != 0 {
		t.Fatalf("refused requests stored %d contracts", len(all))
	}

	rn := NewRenter(client, NewGossip(client, nil, quiet()), renter, 1, nil, nil, quiet())
	defer rn.Close()
	got, err = exchange(ctx, prov, client.ID(), &pb.Request{Body: &pb.Request_Offer{Offer: &pb.Offer{ProposalId: c.ID[:], Contract: c.ToPB()}}})
	if err != nil || got.GetRefusal().GetCode() != pb.Code_CODE_UNKNOWN {
		t.Fatalf("OFFER for no open proposal: %v, %v; want CODE_UNKNOWN", got, err)
	}
	if err := refusalError(got.GetRefusal()); !errors.Is(err, ErrRefused) || !errors.Is(err, ErrNotFound) {
		t.Errorf("refusalError = %v, want ErrRefused and ErrNotFound", err)
	}
}
