package distributor_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/protocol/fetch"
)

// busyBlockSource answers busy, from every provider, for the blocks of one
// object while busy is set: a provider busy for one object's blocks and
// not another's, which a real one (its budget is one for all GETs) cannot
// be made into. Other blocks are read for real.
type busyBlockSource struct {
	*fetch.Client
	blocks  map[cid.Cid]bool
	busy    atomic.Bool
	refused atomic.Int64
}

func (s *busyBlockSource) ReadBlock(ctx context.Context, p peer.ID, c cid.Cid) (fetch.Block, error) {
	if s.busy.Load() && s.blocks[c] {
		s.refused.Add(1)
		return fetch.Block{}, errors.Join(fetch.ErrProviderBusy, errors.New("provider busy: its memory budget for all peers is spent"))
	}
	return s.Client.ReadBlock(ctx, p, c)
}

// A fetch waiting for busy providers holds no --max-fetches slot while it
// pauses: with one slot, another object is fetched and served while the
// first still waits, which then completes once a provider is free.
func TestBusyFetchFreesItsSlotWhilePausing(t *testing.T) {
	busyWaitLetsOthersThrough(t, "fetch", distributor.WithMaxFetches(1))
}

// An answer whose fetch waits for busy providers holds no --max-misses
// slot meanwhile (it parks, as for a slow client): with one slot, another
// object is served while the first still waits, which then completes once
// a provider is free.
func TestBusyFetchFreesItsMissSlot(t *testing.T) {
	busyWaitLetsOthersThrough(t, "miss", distributor.WithMaxMisses(1))
}

// busyWaitLetsOthersThrough serves, with one slot of the kind limit
// names, an object B while the fetch of an object A waits for busy
// providers, then A once they are free.
func busyWaitLetsOthersThrough(t *testing.T, kind string, limit distributor.Option) {
	e := newEnv(t, 2)
	const chunk = 256 << 10
	dataA, dataB := randomBytes(t, 3*chunk), randomBytes(t, 2*chunk)
	objA := e.put(t, dataA, chunk, 0, 1)
	objB := e.put(t, dataB, chunk, 0, 1)
	res, err := chunker.Sum(e.ctx, bytes.NewReader(dataA), chunker.WithChunkSize(chunk))
	if err != nil {
		t.Fatal(err)
	}
	var src *busyBlockSource
	srv := e.ownDistributor(t, func(fc *fetch.Client) distributor.BlockSource {
		src = &busyBlockSource{Client: fc, blocks: map[cid.Cid]bool{res.Root: true}}
		for _, ch := range res.Chunks {
			src.blocks[ch.CID] = true
		}
		src.busy.Store(true)
		return src
	}, limit, distributor.WithBusyWait(20*time.Second))
	url := func(o chain.DataObject) string { return srv.URL() + "/api/v1/assets/" + o.ID.String() }

	type answer struct {
		code int
		body []byte
		err  error
	}
	doneA := make(chan answer, 1)
	go func() {
		resp, err := http.Get(url(objA))
		if err != nil {
			doneA <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, err = b.ReadFrom(resp.Body)
		doneA <- answer{resp.StatusCode, b.Bytes(), err}
	}()
	// Both providers asked twice (the second round is after a fresh
	// lookup): the fetch of A pauses now, and waits 20 s at most.
	deadline := time.Now().Add(time.Minute)
	for src.refused.Load() < 4 {
		if time.Now().After(deadline) {
			t.Fatal("timed out waiting for the fetch of A to find every provider busy")
		}
		select {
		case a := <-doneA:
			t.Fatalf("GET of A ended while its providers were busy: %d %v %s", a.code, a.err, a.body)
		case <-time.After(10 * time.Millisecond):
		}
	}
	resp, body := get(t, url(objB))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, dataB) {
		t.Fatalf("GET of B while A's fetch waits for busy providers: %d, %d bytes of %d", resp.StatusCode, len(body), len(dataB))
	}
	select {
	case a := <-doneA:
		t.Fatalf("GET of A ended (%d %v) before B was served: B waited for the only %s slot, held by A's busy wait", a.code, a.err, kind)
	default:
	}
	src.busy.Store(false)
	if a := <-doneA; a.err != nil || a.code != http.StatusOK || !bytes.Equal(a.body, dataA) {
		t.Fatalf("GET of A once its providers are free: %d %v, %d bytes of %d", a.code, a.err, len(a.body), len(dataA))
	}
}
