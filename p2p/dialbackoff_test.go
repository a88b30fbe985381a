package p2p_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"

	"github.com/satchel-net/satchel/p2p"
)

// A failed dial leaves the peer's address in the swarm's backoff, which
// refuses the next dial without trying; ClearDialBackoff makes the next
// dial try the address again.
func TestClearDialBackoff(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	newHost := func() *p2p.Host {
		h, err := p2p.New(ctx, quiet(), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			t.Fatal(err)
		}
		return h
	}
	a, gone := newHost(), newHost()
	defer a.Close()
	to := peer.AddrInfo{ID: gone.ID(), Addrs: gone.Addrs()}
	if err := gone.Close(); err != nil { // its port now refuses connections
		t.Fatal(err)
	}
	dial := func() error {
		err := a.Connect(ctx, to)
		if err == nil {
			t.Fatal("connected to a closed host")
		}
		return err
	}
	if err := dial(); errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("first dial: %v; want a refused dial, not a backoff", err)
	}
	if err := dial(); !errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("dial after a failure: %v; want the swarm's dial backoff", err)
	}
	a.ClearDialBackoff(to.ID)
	if err := dial(); errors.Is(err, swarm.ErrDialBackoff) {
		t.Fatalf("dial after ClearDialBackoff: %v; want a dial tried again", err)
	}
}
