package provider

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/internal/benchutil"
)

// BenchmarkServePolicy measures what the fetch policy costs a fetch GET,
// against the lookup of the block's own index entry every GET makes anyway
// (Store.Has) in the same run:
//   - get_ns/GET is the path the fetch handler takes: ServeRead, then its
//     done once the reply with the block is built — one look-up of the
//     block's objects;
//   - has_ns/GET is Store.Has alone;
//   - ratio_vs_has is get_ns over has_ns.
//
// The store holds 32 objects of 256 chunks; each round asks about every
// chunk.
func BenchmarkServePolicy(b *testing.B) {
	const objects, chunks, rounds = 32, 256, 20
	bs, put := heldFixture(b)
	var cids []cid.Cid
	for o := range uint64(objects) {
		m := put(fmt.Sprintf("dynamic:channel:%d", o%4), o+1, benchutil.Rand(o, chunks<<10), nil)
		for _, c := range m.Chunks {
			cids = append(cids, c.CID)
		}
	}
	p := &servePolicy{h: newHoldings(bs, time.Minute)}
	ctx := context.Background()
	getPass := func() {
		for _, c := range cids {
			done, ok := p.ServeRead(ctx, c)
			if !ok {
				b.Fatalf("held chunk %s not served", c)
			}
			done()
		}
	}
	hasPass := func() {
		for _, c := range cids {
			if ok, err := bs.Has(c); err != nil || !ok {
				b.Fatalf("Has(%s) = %v, %v", c, ok, err)
			}
		}
	}
	timed := func(pass func()) time.Duration {
		start := time.Now()
		pass()
		return time.Since(start)
	}
	hasPass() // warm the index's caches for both alike
	var get, lookup time.Duration
	b.ResetTimer()
	for range b.N {
		// The passes alternate round by round, so load from other
		// processes falls on both alike.
		for range rounds {
			get += timed(getPass)
			lookup += timed(hasPass)
		}
	}
	n := float64(b.N * rounds * len(cids))
	b.ReportMetric(float64(get.Nanoseconds())/n, "get_ns/GET")
	b.ReportMetric(float64(lookup.Nanoseconds())/n, "has_ns/GET")
	b.ReportMetric(get.Seconds()/lookup.Seconds(), "ratio_vs_has")
}
