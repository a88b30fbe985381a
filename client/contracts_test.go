package client

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/satchel-net/satchel/contracts"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/testnet"
	"github.com/satchel-net/satchel/topics"
)

// TestNetworkPutThroughContracts puts a file through the contract path on a
// network whose providers answer proposals: the put publishes a proposal,
// consigns with two providers, pushes to them, and the object reads back
// byte for byte. A proposal on a topic no provider serves gets no offer and
// the put falls back to the chain's providers.
func TestNetworkPutThroughContracts(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3), testnet.Configure(func(c *testnet.Config) { c.Contracts = true }))
	ctx := testCtx(t)
	store, err := contracts.OpenStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	c, renter := renterClient(t, net, []testnet.RenterOption{testnet.WithRenterStore(store)})

	data := randomBytes(t, 5<<20+17, 21)
	topic := topics.New(topics.Low, topics.Low, topics.High, topics.High) // 5 MiB, 30 days, high, high
	waitTopic(t, c.host, topic, 3)

	var neg *contracts.Negotiation
	var negErr error
	sent, _ := countSent(c)
	// Offers are collected until all three providers' came (Enough), or
	// the window closes: here as late as the proposal lives (its TTL), not
	// DefaultContractWindow's 2 s, which a loaded machine's third offer
	// can miss.
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithRedundancy(2),
		WithContracts(renter, ContractNeeds{Window: contracts.DefaultTTL,
			Negotiated: func(n *contracts.Negotiation, err error) { neg, negErr = n, err }}))
	if err != nil {
		t.Fatal(err)
	}
	if negErr != nil || neg == nil || neg.Proposal.Topic != topic {
		t.Fatalf("negotiation: %+v, %v; want one on %s", neg, negErr, topic)
	}
	if len(neg.Offers) != 3 || len(neg.Contracts) != 2 {
		t.Fatalf("%d offers, %d contracts; want 3 offers and 2 contracts", len(neg.Offers), len(neg.Contracts))
	}
	// Pipelined (the default for 5 MiB on 2 providers): the second provider
	// authorised each forwarded chunk by its own contract's session, so
	// the client sent every byte once.
	if got := sent.Load(); got != int64(len(data)) {
		t.Errorf("client sent %d chunk bytes for %d (%.2f×); want each once, through the pipeline", got, len(data), float64(got)/float64(len(data)))
	}
	for _, cs := range neg.Contracts {
		if !slices.Contains(obj.Providers, cs.Contract.ProviderPeer) {
			t.Errorf("consigned provider %s does not hold the object (holders %v)", cs.Contract.ProviderPeer, obj.Providers)
		}
		// The renter's store says which object the contract's upload
		// became (the contract, signed before, names none).
		if bound, ok, err := store.Bound(cs.Contract.ID, cs.Contract.Provider); err != nil || !ok || bound != obj.ID {
			t.Errorf("contract %s bound to object %d (%v, %v), want %d", cs.Contract.ID, bound, ok, err, obj.ID)
		}
		for _, p := range net.Providers() {
			if p.Host().ID() != cs.Contract.ProviderPeer {
				continue
			}
			resp, pst := p.Contracts()
			if got, err := pst.Get(cs.Contract.ID, cs.Contract.Provider); err != nil || got.Verify() != nil {
				t.Errorf("provider %d does not keep the contract: %v", p.Index, err)
			}
			// BIND ended the grant and returned its room: the voucher
			// counts the registered object now.
			if n := resp.OpenGrants(); n != 0 {
				t.Errorf("provider %d keeps %d grants open after the object was bound", p.Index, n)
			}
			// ... and made the contract, stored open at CONSIGN, one the
			// provider keeps to its end, with the object it became.
			if _, open, err := pst.Open(cs.Contract.ID, cs.Contract.Provider); err != nil || open {
				t.Errorf("provider %d still holds contract %s as an open upload (%v); BIND should settle it", p.Index, cs.Contract.ID, err)
			}
			if bound, ok, err := pst.Bound(cs.Contract.ID, cs.Contract.Provider); err != nil || !ok || bound != obj.ID {
				t.Errorf("provider %d: contract %s bound to %d (%v, %v), want %d", p.Index, cs.Contract.ID, bound, ok, err, obj.ID)
			}
		}
	}
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get after a contract put: %v (equal %v)", err, bytes.Equal(out.Bytes(), data))
	}

	// No provider serves low availability and speed: no offer, fallback.
	small := randomBytes(t, 100_000, 22)
	obj2, err := c.PutFile(ctx, net.Bag, writeTemp(t, small), WithRedundancy(2),
		WithContracts(renter, ContractNeeds{Availability: topics.Low, Speed: topics.Low, Window: 300 * time.Millisecond,
			Negotiated: func(n *contracts.Negotiation, err error) { neg, negErr = n, err }}))
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(negErr, contracts.ErrNoOffers) {
		t.Fatalf("negotiation on an unserved topic: %v, want ErrNoOffers", negErr)
	}
	out.Reset()
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj2.ID), &out); err != nil || !bytes.Equal(out.Bytes(), small) {
		t.Fatalf("get after the fallback put: %v", err)
	}
}

// contractClient starts a renter host bootstrapped to net's providers
// (testnet's RenterHost), a client on it with the given options, and
// returns both.
func contractClient(t *testing.T, net *testnet.Network, opts ...Option) (*Client, *contracts.Renter) {
	t.Helper()
	return renterClient(t, net, nil, opts...)
}

// renterClient is contractClient with the renter configured by ropts.
func renterClient(t *testing.T, net *testnet.Network, ropts []testnet.RenterOption, opts ...Option) (*Client, *contracts.Renter) {
	t.Helper()
	h, renter, err := net.RenterHost(testCtx(t), ropts...)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{Chain: net.Client, Key: net.Member, Host: h, StateDir: t.TempDir(), ChunkSize: itChunk}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c, renter
}

// waitTopic waits until h knows want peers subscribed to topic.
func waitTopic(t testing.TB, h *p2p.Host, topic topics.Topic, want int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.WaitTopicPeers(ctx, topic.String(), want); err != nil {
		t.Fatal(err)
	}
}
