package client

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// A provider that answers busy goes behind the others for busyPause, and
// comes back after; busy answers are neither failures (however many in a
// row) nor a reason to skip it.
func TestBusySourceRankedBehindForAWhile(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newSources(&Client{log: quietLog}, "bag", []peer.ID{"fast", "slow"})
	s.now = func() time.Time { return now }
	ctx := context.Background()
	next := func() *source {
		t.Helper()
		src, err := s.acquire(ctx, 1<<20, nil)
		if err != nil {
			t.Fatal(err)
		}
		return src
	}
	fast := next()
	s.release(fast, 1<<20, time.Millisecond, nil)
	slow := next()
	s.release(slow, 1<<20, time.Second, nil)
	if fast.peer != "fast" || slow.peer != "slow" {
		t.Fatalf("unmeasured sources asked %s then %s", fast.peer, slow.peer)
	}
	busy := fmtBusy()
	for range 2 * sourceFailures {
		if got := next(); got != fast {
			t.Fatalf("asked %s, want the fastest before it answers busy", got.peer)
		}
		s.release(fast, 0, time.Millisecond, busy)
		if got := next(); got != slow {
			t.Fatalf("asked %s right after the fastest answered busy, want the other", got.peer)
		}
		s.release(slow, 1<<20, time.Second, nil)
		now = now.Add(busyPause - time.Millisecond)
		if got := next(); got != slow {
			t.Fatalf("asked %s within busyPause of a busy answer, want the other", got.peer)
		}
		s.release(slow, 1<<20, time.Second, nil)
		now = now.Add(time.Millisecond)
	}
	if got := next(); got != fast {
		t.Fatalf("asked %s after busyPause, want the fastest back", got.peer)
	}
	if fast.skipped != nil || fast.fails != 0 || len(s.tried) != 0 || fast.busy != 2*sourceFailures {
		t.Fatalf("after %d busy answers: skipped %v, %d failures, tried %v, busy %d", 2*sourceFailures, fast.skipped, fast.fails, s.tried, fast.busy)
	}
}

// fmtBusy is the error fetch.Client returns for a busy refusal.
func fmtBusy() error {
	return errors.Join(fetch.ErrProviderBusy, errors.New("provider busy: its memory budget for all peers is spent"))
}

// With real providers: one made busy for real (its fetch budget spent by
// another reader's pinned GETs) is read around at once, with no error and
// without being held against it; with every holder busy a read waits and
// succeeds once one is free again, and fails with ErrProvidersBusy (not
// "not found") when none is within the busy wait.
func TestNetworkGetAroundBusyProvider(t *testing.T) {
	if testing.Short() {
		t.Skip("network test")
	}
	net := testnet.New(t, testnet.Providers(2))
	c := netClient(t, net, t.TempDir())
	ctx := testCtx(t)
	const chunk = 1 << 20
	data := randomBytes(t, 4*chunk+5, 21)
	obj, err := c.Put(ctx, net.Bag, bytes.NewReader(data), WithRedundancy(2), WithChunkSize(chunk))
	if err != nil {
		t.Fatal(err)
	}
	busy, other := net.Provider(0), net.Provider(1)
	if err := busy.LimitFetchBudget(ctx); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "provider 0 to serve the object again", func() bool { return busy.Holds(obj.ID) })
	leaf := chunker.ChunkCID(data[:chunk])
	release, err := busy.HoldFetchBudget(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}

	// One of two busy: the busy one asked first, the other serves.
	before := busy.RefusedGETs()
	r, err := c.Open(ctx, ObjectRef(net.Bag, obj.ID), WithPeers(busy.AddrInfo(), other.AddrInfo()))
	if err != nil {
		t.Fatalf("open with one provider busy: %v", err)
	}
	var out bytes.Buffer
	if _, err := r.WriteTo(&out); err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get with one provider busy: %v (%d bytes of %d)", err, out.Len(), len(data))
	}
	if busy.RefusedGETs() <= before {
		t.Fatal("the busy provider refused no GET of the download: it was not asked")
	}
	for _, src := range r.srcs.all {
		if src.peer == busy.Host().ID() && (src.busy == 0 || src.fails != 0 || src.skipped != nil) {
			t.Fatalf("busy provider: %d busy answers, %d failures, skipped %v; want busy, not failed", src.busy, src.fails, src.skipped)
		}
	}
	if len(r.srcs.tried) != 0 {
		t.Fatalf("providers held against the download: %v", r.srcs.tried)
	}
	r.Close()

	// Every holder busy: the read waits, and succeeds once one is free.
	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	before = busy.RefusedGETs()
	done := make(chan error, 1)
	out.Reset()
	go func() {
		_, err := c.Get(ctx, ObjectRef(net.Bag, obj.ID), &out, WithPeers(busy.AddrInfo()))
		done <- err
	}()
	testnet.Wait(t, "the only live provider to refuse the read busy", func() bool { return busy.RefusedGETs() > before })
	release()
	if err := <-done; err != nil || !bytes.Equal(out.Bytes(), data) {
		t.Fatalf("get once the busy provider is free again: %v (%d bytes of %d)", err, out.Len(), len(data))
	}

	// Busy for longer than the busy wait: ErrProvidersBusy, retry later.
	release, err = busy.HoldFetchBudget(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	impatient := netClient(t, net, t.TempDir(), WithBusyWait(time.Second))
	_, err = impatient.Get(ctx, ObjectRef(net.Bag, obj.ID), io.Discard, WithPeers(busy.AddrInfo()))
	if !errors.Is(err, ErrProvidersBusy) || !errors.Is(err, fetch.ErrProviderBusy) || errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "retry later") {
		t.Fatalf("get while the only provider stays busy: %v; want ErrProvidersBusy saying to retry later", err)
	}
	t.Log(err)
}
