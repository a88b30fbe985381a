package faults

import (
	"bytes"
	"context"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// TestBitRot flips a byte in random block files of one provider: reads
// find the damage (the block is answered FAILED, never served), the
// provider repairs each block from a peer, and every byte reads back right.
func TestBitRot(t *testing.T) {
	rounds := pick(1, 20)
	net := testnet.New(t, testnet.Providers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(2, uint64(time.Now().UnixNano())))
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()
	f := figures{Scenario: "bit rot found by reads and repaired"}
	for range rounds {
		o, err := upload(ctx, net, randData(r, 2<<20), 0, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		f.Acknowledged++
		victim := r.IntN(3)
		p := net.Provider(victim)
		for _, k := range r.Perm(len(o.res.Chunks))[:2] {
			c := o.res.Chunks[k]
			flipBit(t, p.Store(), c.CID, r)
		}
		f.Attempted++
		if res := read(ctx, fc, p.AddrInfo().ID, o); res == readCorrupted {
			f.Corrupted++
		}
		took, ok := waitFor(time.Minute, func() bool {
			if !p.Holds(o.obj.ID) {
				return false
			}
			for _, c := range o.res.Chunks {
				got, err := p.Store().Get(c.CID)
				if err != nil || !bytes.Equal(got, o.data[c.Offset:c.Offset+int64(c.Size)]) {
					return false
				}
			}
			return true
		})
		if !ok {
			t.Errorf("provider %d did not repair object %d", victim, o.obj.ID)
			f.Lost++
		}
		f.Recover = max(f.Recover, took)
		f.Attempted++
		if res := read(ctx, fc, p.AddrInfo().ID, o); res != readOK {
			t.Errorf("read after repair: %v", res)
			if res == readCorrupted {
				f.Corrupted++
			}
		}
	}
	f.Note = "rounds: " + itoa(rounds) + ", 2 blocks rotted each"
	report(t, f)
}
