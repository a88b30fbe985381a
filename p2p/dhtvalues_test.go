package p2p_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	dhtpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	recpb "github.com/libp2p/go-libp2p-record/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
)

// A peer's PUT_VALUE of a valid /pk record, which kad-dht's default value
// store would keep for 36 hours, is refused (the stream is reset) and a
// GET_VALUE of the key finds nothing; the same peer's FIND_NODE and
// GET_PROVIDERS are answered, so it is values alone the DHT server turned
// away.
func TestDHTStoresNoValues(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	victim, att := victimAndAttacker(t, ctx, nil)

	_, pub, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	val, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	key := []byte("/pk/" + string(id))
	put := &dhtpb.Message{Type: dhtpb.Message_PUT_VALUE, Key: key, Record: &recpb.Record{Key: key, Value: val}}
	if resp, err := dhtCall(ctx, att, victim, put); err == nil {
		t.Fatalf("PUT_VALUE answered %v, want the stream reset", resp)
	}
	get := &dhtpb.Message{Type: dhtpb.Message_GET_VALUE, Key: key}
	if resp, err := dhtCall(ctx, att, victim, get); err == nil && resp.GetRecord() != nil {
		t.Fatalf("GET_VALUE after PUT_VALUE found record %v: the server stored it", resp.GetRecord())
	}

	find := &dhtpb.Message{Type: dhtpb.Message_FIND_NODE, Key: []byte(id)}
	if resp, err := dhtCall(ctx, att, victim, find); err != nil || resp.GetType() != dhtpb.Message_FIND_NODE {
		t.Fatalf("FIND_NODE: %v, %v; want an answer", resp, err)
	}
	providers := &dhtpb.Message{Type: dhtpb.Message_GET_PROVIDERS, Key: p2p.BagKey("dynamic:channel:1").Hash()}
	if resp, err := dhtCall(ctx, att, victim, providers); err != nil || resp.GetType() != dhtpb.Message_GET_PROVIDERS {
		t.Fatalf("GET_PROVIDERS: %v, %v; want an answer", resp, err)
	}
}

// dhtCall sends req to the DHT server to on a stream of its own and reads
// the answer.
func dhtCall(ctx context.Context, from host.Host, to *p2p.Host, req *dhtpb.Message) (*dhtpb.Message, error) {
	s, err := from.NewStream(ctx, to.ID(), p2p.ProtocolPrefix+"/kad/1.0.0")
	if err != nil {
		return nil, err
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(10 * time.Second))
	if err := p2p.WriteMsg(s, req); err != nil {
		return nil, err
	}
	var resp dhtpb.Message
	if err := p2p.ReadMsg(s, &resp, 1<<20); err != nil {
		return nil, err
	}
	return &resp, nil
}
