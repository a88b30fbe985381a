package faults

import (
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/provider"
	"github.com/satchel-net/satchel/testnet"
)

// faultyNet is a network whose providers each sit behind a gate and a
// faulty chain transport.
type faultyNet struct {
	*testnet.Network
	gates  []*gate
	chains []*faultyChain
}

func newFaultyNet(t *testing.T, opts ...provider.Option) *faultyNet {
	t.Helper()
	f := &faultyNet{gates: make([]*gate, 3), chains: make([]*faultyChain, 3)}
	for i := range f.gates {
		f.gates[i] = &gate{}
	}
	f.Network = testnet.New(t, testnet.Providers(3), testnet.Configure(func(c *testnet.Config) {
		c.HostOptions = func(i int) []p2p.Option {
			return []p2p.Option{p2p.WithLibp2pOptions(libp2p.ConnectionGater(f.gates[i]))}
		}
		c.ChainTransport = func(i int, tr chain.Transport) chain.Transport {
			if f.chains[i] == nil {
				f.chains[i] = &faultyChain{}
			}
			f.chains[i].Transport = tr
			return f.chains[i]
		}
		c.ProviderOptions = append(c.ProviderOptions, opts...)
	}))
	return f
}

// TestPartitionAndHeal cuts one provider off from its peers and the chain
// while uploads go on to the others, then heals the partition: nothing
// acknowledged is lost, and the provider catches up on what it missed.
func TestPartitionAndHeal(t *testing.T) {
	rounds := pick(1, 5)
	net := newFaultyNet(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(4, uint64(time.Now().UnixNano())))
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	f := figures{Scenario: "partition and heal (peers and chain)"}
	var acked []object
	for range rounds {
		before, err := upload(ctx, net.Network, randData(r, 1<<20), 0, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		f.Attempted++
		acked = append(acked, before)

		victim := r.IntN(3)
		p := net.Provider(victim)
		net.gates[victim].cut.Store(true)
		net.chains[victim].set(chainDown)
		for _, other := range p.Host().Libp2p().Network().Peers() {
			_ = p.Host().Libp2p().Network().ClosePeer(other)
		}
		// Uploads during the partition: to the cut provider they fail, to
		// the others they are acknowledged.
		f.Attempted += 2
		if _, err := upload(ctx, net.Network, randData(r, 256<<10), victim); err == nil {
			t.Errorf("an upload to partitioned provider %d was acknowledged", victim)
		}
		others := []int{(victim + 1) % 3, (victim + 2) % 3}
		during, err := upload(ctx, net.Network, randData(r, 1<<20), others...)
		if err != nil {
			t.Fatalf("upload to %v during the partition: %v", others, err)
		}
		acked = append(acked, during)

		// Heal.
		start := time.Now()
		net.gates[victim].cut.Store(false)
		net.chains[victim].set(chainOK)
		// Dials refused during the partition left backoffs behind; a healed
		// network forgets them, as its hosts would after the backoff.
		vid := p.AddrInfo().ID
		for _, hh := range []*p2p.Host{h, net.Provider(others[0]).Host(), net.Provider(others[1]).Host()} {
			hh.ClearDialBackoff(vid)
		}
		for _, o := range others {
			if err := p.Host().Connect(ctx, net.Provider(o).AddrInfo()); err != nil {
				t.Fatalf("reconnect after heal: %v", err)
			}
		}
		took, ok := waitFor(2*time.Minute, func() bool { return p.Holds(during.obj.ID) && p.Holds(before.obj.ID) })
		if !ok {
			t.Errorf("provider %d did not catch up within %v after the partition healed", victim, took)
		}
		f.Recover = max(f.Recover, time.Since(start))
	}
	for _, o := range acked {
		for _, i := range o.holders() {
			f.Attempted++
			switch readBack(ctx, h.Libp2p(), fc, net.Provider(i).AddrInfo(), o) {
			case readCorrupted:
				f.Corrupted++
			case readFailed:
				t.Errorf("object %d not readable from provider %d", o.obj.ID, i)
				f.Lost++
			}
		}
	}
	f.Acknowledged = len(acked)
	f.Note = "partitions: " + itoa(rounds) + "; recover = heal until the cut provider holds what it missed"
	report(t, f)
}
