package client

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/testnet"
)

// bytesIn sums the chunk bytes the running providers of net received in
// store data frames.
func bytesIn(t *testing.T, net *testnet.Network) int64 {
	t.Helper()
	var n float64
	for _, p := range net.Providers() {
		if reg := p.Registry(); reg != nil {
			v, err := metricsutil.Counter(reg, "satchel_provider_store_bytes_in_total")
			if err != nil {
				t.Fatal(err)
			}
			n += v
		}
	}
	return int64(n)
}

// TestNetworkResumeCounters checks, pushed directly and pipelined, that
// Resumed and Sent say the same: the content put a second time (another
// upload of the same content) is all resumed and sends no byte, and an
// interrupted upload resumed counts in Sent only chunks it does not count
// as resumed.
func TestNetworkResumeCounters(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	for _, mode := range []Replication{ReplicateDirect, ReplicatePipelined} {
		t.Run(mode.String(), func(t *testing.T) {
			net := testnet.New(t, testnet.Providers(3))
			data := randomBytes(t, 8<<20, 16)
			path := writeTemp(t, data)
			total := len(data) / itChunk

			// Put twice, by two clients with state of their own.
			if _, err := netClient(t, net, t.TempDir()).PutFile(testCtx(t), net.Bag, path, WithReplication(mode)); err != nil {
				t.Fatal(err)
			}
			before := bytesIn(t, net)
			c := netClient(t, net, t.TempDir())
			// A pipeline's hops say they held a chunk by when they stored
			// it; the chunks of the first put were stored seconds ago.
			c.now = func() time.Time { return time.Now().Add(time.Hour) }
			lp := &lastProgress{t: t}
			obj, err := c.PutFile(testCtx(t), net.Bag, path, WithReplication(mode), WithProgress(lp.fn))
			if err != nil {
				t.Fatal(err)
			}
			if got, p := bytesIn(t, net)-before, lp.get(); got != 0 || p.Sent != 0 || p.Resumed != total || obj.Resumed != total {
				t.Fatalf("the same content put again: providers received %d bytes, progress says %d sent and %d of %d chunks resumed (object %d)",
					got, p.Sent, p.Resumed, total, obj.Resumed)
			}

			// Interrupted once a third of the chunk copies are signed,
			// then resumed.
			data = randomBytes(t, 8<<20, 17)
			path = writeTemp(t, data)
			dir := t.TempDir()
			c1 := netClient(t, net, dir, WithWindow(4))
			ctx, cancel := context.WithCancel(testCtx(t))
			var once sync.Once
			_, err = c1.PutFile(ctx, net.Bag, path, WithReplication(mode), WithProgress(func(p Progress) {
				if p.Links[LinkSigned] >= total {
					once.Do(cancel)
				}
			}))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("interrupted put: %v", err)
			}
			_ = c1.Close()
			before = bytesIn(t, net)
			lp = &lastProgress{t: t}
			obj, err = netClient(t, net, dir).PutFile(testCtx(t), net.Bag, path, WithReplication(mode), WithProgress(lp.fn))
			if err != nil {
				t.Fatal(err)
			}
			// No byte of a resumed chunk is sent, so every byte counted
			// is of another chunk, to one of its three providers.
			got, p := bytesIn(t, net)-before, lp.get()
			if p.Resumed != obj.Resumed || p.Sent == 0 || p.Sent > int64(total-p.Resumed)*3*itChunk {
				t.Fatalf("resumed: %d of %d chunks resumed (object %d), %d bytes sent; at most %d bytes are left to send",
					p.Resumed, total, obj.Resumed, p.Sent, int64(total-p.Resumed)*3*itChunk)
			}
			t.Logf("resumed %d of %d chunks, %d bytes sent, providers received %d", p.Resumed, total, p.Sent, got)
		})
	}
}
