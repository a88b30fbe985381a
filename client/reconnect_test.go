package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store"
	storepb "github.com/satchel-net/satchel/protocol/store/pb"
	"github.com/satchel-net/satchel/testnet"
)

// fixedPortNet starts a testnet of n providers each listening on a port
// of its own that a restart keeps: a provider restarted comes back at the
// same address with the same identity, as an operator's does.
func fixedPortNet(t *testing.T, n int) *testnet.Network {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
	}
	return testnet.New(t, testnet.Providers(n), testnet.Configure(func(c *testnet.Config) {
		c.ProviderListenAddrs = func(i int) []string { return []string{fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", ports[i])} }
	}))
}

// victimWatch wraps c's store streams to watch one provider: the opens
// that failed, and every chunk push to it, so a test sees a chunk pushed
// again after the provider signed a receipt for it.
type victimWatch struct {
	id         peer.ID
	failedOpen atomic.Int32
	onRefused  func() // called (in its own goroutine) on each failed open

	mu     sync.Mutex
	acked  map[int]bool
	resent []int // chunks pushed again after their receipt
}

func watchVictim(c *Client, id peer.ID) *victimWatch {
	w := &victimWatch{id: id, acked: map[int]bool{}}
	open := c.openConn
	c.openConn = func(ctx context.Context, p peer.ID) (storeConn, error) {
		conn, err := open(ctx, p)
		if p != w.id {
			return conn, err
		}
		if err != nil {
			w.failedOpen.Add(1)
			if w.onRefused != nil {
				go w.onRefused()
			}
			return nil, err
		}
		return watchedConn{conn, w}, nil
	}
	return w
}

type watchedConn struct {
	storeConn
	w *victimWatch
}

func (c watchedConn) Push(ctx context.Context, ch store.ChunkPush) (*storepb.Receipt, error) {
	c.w.sent(ch.Index)
	r, err := c.storeConn.Push(ctx, ch)
	c.w.done(ch.Index, err)
	return r, err
}

func (c watchedConn) PushPipeline(ctx context.Context, ch store.ChunkPush) (store.PipelineResult, error) {
	c.w.sent(ch.Index)
	r, err := c.storeConn.PushPipeline(ctx, ch)
	c.w.done(ch.Index, err)
	return r, err
}

func (w *victimWatch) sent(i int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.acked[i] {
		w.resent = append(w.resent, i)
	}
}

func (w *victimWatch) done(i int, err error) {
	if err != nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.acked[i] = true
}

// A provider stopped in the middle of a put and started again at the same
// address and identity is dialled again, by peer ID, until it is back: the
// put completes on every provider with their receipts, the provider is
// not sent the chunks it acknowledged before it went down, and the object
// reads back byte-exact. The restart is driven by the client's first
// refused dial of the stopped provider, not by a pause.
func TestPutSurvivesProviderRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := fixedPortNet(t, 3)
	// A generous bound: the restarted provider publishes its addresses on
	// chain before the test's helper returns, which a loaded machine slows.
	c := netClient(t, net, t.TempDir(), WithReconnectWait(time.Minute))
	ctx := testCtx(t)
	data := randomBytes(t, 12<<20, 61)
	victim := net.Provider(1)
	w := watchVictim(c, victim.AddrInfo().ID)

	var k killer
	var restartOnce sync.Once
	var wg sync.WaitGroup
	var restarted atomic.Bool
	w.onRefused = func() {
		restartOnce.Do(func() {
			wg.Add(1)
			defer wg.Done()
			if err := victim.Restart(ctx); err != nil {
				t.Error(err)
				return
			}
			restarted.Store(true)
		})
	}
	obj, err := c.PutFile(ctx, net.Bag, writeTemp(t, data), WithChunkSize(itChunk), WithProgress(func(p Progress) {
		if p.TotalChunks > 0 && p.Links[LinkSigned] >= p.TotalChunks {
			k.kill(t, always(victim))
		}
	}))
	k.wait()
	wg.Wait()
	if err != nil {
		t.Fatalf("put with a provider restarted mid-upload: %v", err)
	}
	if w.failedOpen.Load() == 0 || !restarted.Load() {
		t.Fatalf("%d refused dials of the stopped provider, restarted %v: the put did not meet the outage", w.failedOpen.Load(), restarted.Load())
	}
	if len(obj.Providers) != 3 || obj.Degraded() {
		t.Fatalf("object on %d providers (degraded %v), want all 3", len(obj.Providers), obj.Degraded())
	}
	w.mu.Lock()
	resent, acked := w.resent, len(w.acked)
	w.mu.Unlock()
	if len(resent) != 0 || acked == 0 {
		t.Fatalf("chunks %v pushed to the restarted provider again after it acknowledged them (%d acknowledged)", resent, acked)
	}
	if o, err := net.Client.DataObject(ctx, net.Bag, obj.ID); err != nil || !o.Accepted {
		t.Fatalf("chain object %+v %v", o, err)
	}
	testnet.Wait(t, "the restarted provider to serve the object", func() bool { return victim.Holds(obj.ID) })
	var out bytes.Buffer
	if _, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out, WithPeers(victim.AddrInfo())); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get: %v (%d bytes of %d, equal %v)", err, out.Len(), len(data), bytes.Equal(out.Bytes(), data))
	}
}

// A provider that stays down after it was lost mid-put is dialled again
// for the reconnect wait, then given up: with no spare the put fails with
// a NoProviderError saying the provider is unreachable and to check that
// it runs, not that it refused.
func TestPutGivesUpProviderDownForReconnectWait(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(3))
	const bound = 2 * time.Second
	c := netClient(t, net, t.TempDir(), WithReconnectWait(bound))
	ctx := testCtx(t)
	victim := net.Provider(2)
	id := victim.AddrInfo().ID
	w := watchVictim(c, id)
	var k killer
	_, err := c.PutFile(ctx, net.Bag, writeTemp(t, randomBytes(t, 8<<20, 62)), WithChunkSize(itChunk), WithProgress(func(p Progress) {
		if p.TotalChunks > 0 && p.Links[LinkSigned] >= p.TotalChunks/2 {
			k.kill(t, always(victim))
		}
	}))
	k.wait()
	var npe *NoProviderError
	if !errors.As(err, &npe) || npe.Have != 2 {
		t.Fatalf("put with a provider down for good: %v; want a NoProviderError with 2 providers", err)
	}
	var ue *unreachableError
	if len(npe.Tried) != 1 || npe.Tried[0].Peer != id || !errors.As(npe.Tried[0].Err, &ue) {
		t.Fatalf("providers given up %v; want the stopped one, unreachable", npe.Tried)
	}
	if ue.waited < bound || w.failedOpen.Load() < 2 {
		t.Fatalf("given up after %s and %d refused dials; want the whole %s and dials again", ue.waited, w.failedOpen.Load(), bound)
	}
	if msg := err.Error(); !strings.Contains(msg, "unreachable for") || !strings.Contains(msg, "check that the providers run and are reachable") || strings.Contains(msg, "refused the upload") {
		t.Fatalf("message %q; want the unreachable advice", msg)
	}
}
