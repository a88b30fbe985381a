package distributor_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// PoC (secreview, session 14): FAILS on main by design.
//
// A multi-range GET of MaxRanges one-byte ranges, one in each of MaxRanges
// different chunks, makes the distributor fetch (and verify) every one of
// those chunks from the providers to send a few kilobytes: the chunk size
// (1 MiB by default) times MaxRanges, 64 MiB, per request. An object larger
// than the cache keeps (WithMaxCachedObject) is never cached, so the same
// request repeated fetches it all again: no miss needs distinct objects.
// The property asserted is the fix: what a range answer fetches stays
// within a small multiple of what it sends (a cap on the distinct chunks
// one answer's ranges may touch, beyond which the Range is ignored and
// the whole object sent, paced as any answer).
func TestPoCMultiRangeFetchAmplification(t *testing.T) {
	const chunk = 64 << 10
	const chunks = distributor.MaxRanges
	e := newEnv(t, 1, distributor.WithMaxCachedObject(0))
	data := randomBytes(t, chunks*chunk)
	obj := e.put(t, data, chunk)
	srv := e.d.Server()
	fetched := func() float64 {
		testnet.Wait(t, "no fetch running", func() bool { return srv.FetchesRunning() == 0 })
		return counter(t, e.d.Registry(), "satchel_distributor_fetched_bytes_total")
	}
	specs := make([]string, chunks)
	for i := range specs {
		specs[i] = fmt.Sprintf("%d-%d", i*chunk+7, i*chunk+7)
	}
	rg := "bytes=" + strings.Join(specs, ",")
	before := fetched()
	sent := 0
	const rounds = 3
	for range rounds {
		resp, body := get(t, e.d.AssetURL(obj.ID), "Range", rg)
		if resp.StatusCode != 206 {
			t.Fatalf("multi-range: %d", resp.StatusCode)
		}
		sent += len(body)
	}
	got := fetched() - before
	t.Logf("%d requests of %d one-byte ranges (a %d-byte header): %d bytes sent, %.0f fetched from providers (%.0f×); with 1 MiB chunks that is %d MiB fetched per request",
		rounds, chunks, len(rg), sent, got, got/float64(sent), chunks)
	if got > 16*float64(sent) {
		t.Errorf("range answers fetched %.0f bytes to send %d", got, sent)
	}
}
