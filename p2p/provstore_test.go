package p2p_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	pb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-msgio/pbio"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// TestProviderRecordsBounded floods one node with ADD_PROVIDERs from two
// peers, each sending more than a peer may have, on raw /satchel/kad streams:
// the node keeps at most PerPeer of each and Records in all, shared fairly
// between the flooders, and a genuine bag provider announcing afterwards
// still gets its record onto the full node and is found. kad-dht's default
// store kept every record.
func TestProviderRecordsBounded(t *testing.T) {
	limits := p2p.ProviderLimits{Records: 100, PerPeer: 60}
	net := testnet.New(t, 5, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 0 {
			return []p2p.Option{p2p.WithProviderLimits(limits)}
		}
		return nil
	}))
	node, floodA, floodB, genuine, finder := net.Host(0), net.Host(1), net.Host(2), net.Host(3), net.Host(4)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	keysA := floodProviders(ctx, t, floodA.Libp2p(), node, "a", limits.PerPeer+10)
	if got := heldKeys(ctx, t, node, floodA.ID(), keysA); got != limits.PerPeer {
		t.Fatalf("the node keeps %d of %d records of one peer; want PerPeer = %d", got, len(keysA), limits.PerPeer)
	}
	keysB := floodProviders(ctx, t, floodB.Libp2p(), node, "b", limits.PerPeer+10)
	heldA, heldB := heldKeys(ctx, t, node, floodA.ID(), keysA), heldKeys(ctx, t, node, floodB.ID(), keysB)
	if heldA+heldB > limits.Records || heldA > limits.PerPeer || heldB > limits.PerPeer {
		t.Fatalf("the node keeps %d + %d records; want at most %d in all, %d each", heldA, heldB, limits.Records, limits.PerPeer)
	}
	if heldA != heldB {
		t.Errorf("full, the node keeps %d records of the first flooder and %d of the second; want them even", heldA, heldB)
	}
	if got := node.ProviderRecords(); got != heldA+heldB {
		t.Errorf("ProviderRecords = %d, want %d", got, heldA+heldB)
	}

	bag := p2p.BagKey("dynamic:channel:1")
	if err := genuine.Provide(ctx, bag); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	// Provide sends ADD_PROVIDER and waits for no answer: wait for the record.
	for heldKeys(ctx, t, node, genuine.ID(), [][]byte{bag.Hash()}) != 1 {
		select {
		case <-ctx.Done():
			t.Fatal("the full node refused a genuine bag provider's record")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if got := node.ProviderRecords(); got > limits.Records {
		t.Fatalf("after the genuine record the node keeps %d records, more than %d", got, limits.Records)
	}
	found, err := finder.FindProviders(ctx, bag, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !containsPeer(found, genuine.ID()) {
		t.Fatalf("FindProviders = %v, want %s", found, genuine.ID())
	}
}

// A record refused for a key whose providers the DHT has cached (a key read
// lately) is not served from that cache: kad-dht adds the provider to the
// cached set before it writes the record.
func TestRefusedProviderRecordNotServed(t *testing.T) {
	limits := p2p.ProviderLimits{Records: 100, PerPeer: 5}
	net := testnet.New(t, 3, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 0 {
			return []p2p.Option{p2p.WithProviderLimits(limits)}
		}
		return nil
	}))
	node, flooder, genuine := net.Host(0), net.Host(1), net.Host(2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bag := p2p.BagKey("dynamic:channel:7")
	if err := genuine.Provide(ctx, bag); err != nil {
		t.Fatalf("Provide: %v", err)
	}
	for heldKeys(ctx, t, node, genuine.ID(), [][]byte{bag.Hash()}) != 1 { // read: now cached
		select {
		case <-ctx.Done():
			t.Fatal("the node did not keep the genuine record")
		case <-time.After(20 * time.Millisecond):
		}
	}
	floodProviders(ctx, t, flooder.Libp2p(), node, "fill", limits.PerPeer)
	testnet.AnnounceProviders(ctx, t, flooder.Libp2p(), node.ID(), [][]byte{bag.Hash()}) // over its share: refused
	if heldKeys(ctx, t, node, flooder.ID(), [][]byte{bag.Hash()}) != 0 {
		t.Fatal("the node serves a refused record from its cache")
	}
	if heldKeys(ctx, t, node, genuine.ID(), [][]byte{bag.Hash()}) != 1 {
		t.Fatal("the genuine record is gone")
	}
}

// TestProviderRecordKeyForm: a record whose key is not a sha2-256 multihash
// (a bag key's form on the wire) is refused and the stream reset.
func TestProviderRecordKeyForm(t *testing.T) {
	net := testnet.New(t, 2)
	node, att := net.Host(0), net.Host(1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := att.Libp2p().NewStream(ctx, node.ID(), p2p.KadProtocol)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()
	key := []byte("thirty-two bytes, not a multihash")
	msg := pb.NewMessage(pb.Message_ADD_PROVIDER, key, 0)
	msg.ProviderPeers = pb.RawPeerInfosToPBPeers([]peer.AddrInfo{att.AddrInfo()})
	if err := pbio.NewDelimitedWriter(s).WriteMsg(msg); err != nil {
		t.Fatal(err)
	}
	_ = s.CloseWrite()
	// The node resets the stream on a refused record; it would close it
	// (EOF) had it handled every message.
	if _, err := s.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("after the ADD_PROVIDER the stream read %v; want a reset", err)
	}
	if got, _ := node.DHT().ProviderStore().GetProviders(ctx, key); len(got) != 0 || node.ProviderRecords() != 0 {
		t.Fatalf("the node keeps a record under a key that is no multihash: %v", got)
	}
}

// floodProviders sends n ADD_PROVIDERs for fresh sha2-256 keys from att to
// node on one stream, as fast as it can write, and returns once the node has
// handled all it will: it closed the stream (all read) or reset it (a record
// refused).
func floodProviders(ctx context.Context, t *testing.T, att host.Host, node *p2p.Host, tag string, n int) [][]byte {
	t.Helper()
	keys := make([][]byte, n)
	for i := range keys {
		sum, err := multihash.Sum(fmt.Appendf(nil, "%s %s %d", t.Name(), tag, i), multihash.SHA2_256, -1)
		if err != nil {
			t.Fatal(err)
		}
		keys[i] = sum
	}
	testnet.AnnounceProviders(ctx, t, att, node.ID(), keys)
	return keys
}

// heldKeys counts the keys for which node keeps a record of provider p.
func heldKeys(ctx context.Context, t *testing.T, node *p2p.Host, p peer.ID, keys [][]byte) int {
	t.Helper()
	held := 0
	for _, k := range keys {
		got, err := node.DHT().ProviderStore().GetProviders(ctx, k)
		if err != nil && !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if containsPeer(got, p) {
			held++
		}
	}
	return held
}

func containsPeer(infos []peer.AddrInfo, p peer.ID) bool {
	for _, ai := range infos {
		if ai.ID == p {
			return true
		}
	}
	return false
}
