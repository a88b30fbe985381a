package distributor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// A provider made busy for real (its fetch budget spent by another
// reader's pinned GETs) is read around at once: the request succeeds from
// the other provider, the busy one is counted busy, not failed. With every
// holder busy a fetch waits and succeeds once one is free, and answers 503
// providers_busy with Retry-After when none is within the busy wait.
func TestBusyProviderReadAround(t *testing.T) {
	net := testnet.New(t, testnet.Providers(2))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const chunk = 1 << 20
	data := randomBytes(t, 4*chunk+5)
	obj, err := net.UploadChunked(ctx, data, chunk, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Never read until the end: its root is fetched before the answer.
	unread, err := net.UploadChunked(ctx, randomBytes(t, 2*chunk), chunk, 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	busy, other := net.Provider(0), net.Provider(1)
	if err := busy.LimitFetchBudget(ctx); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "both providers to serve the objects", func() bool {
		return busy.Holds(obj.ID) && other.Holds(obj.ID) && busy.Holds(unread.ID) && other.Holds(unread.ID)
	})
	// Leaves are not cached: every request fetches them.
	d, err := net.AddDistributor(ctx, distributor.WithMaxCachedObject(0), distributor.WithBusyWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{net: net, d: d, ctx: ctx}
	e.waitAccepted(t, obj)
	e.waitAccepted(t, unread)
	leaf := chunker.ChunkCID(data[:chunk])
	release, err := busy.HoldFetchBudget(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}
	busyID := busy.Host().ID().String()
	stats := func() distributor.SourceStatus {
		for _, s := range d.Server().Status().Sources {
			if s.Peer == busyID {
				return s
			}
		}
		return distributor.SourceStatus{}
	}

	// One of two busy (and ranked first: the bag names its bucket first).
	before := busy.RefusedGETs()
	resp, body := get(t, d.AssetURL(obj.ID))
	if resp.StatusCode != http.StatusOK || !bytes.Equal(body, data) {
		t.Fatalf("GET with one provider busy: %d, %d bytes of %d", resp.StatusCode, len(body), len(data))
	}
	if busy.RefusedGETs() <= before {
		t.Fatal("the busy provider refused no GET of the request: it was not asked")
	}
	if s := stats(); s.Busy == 0 || s.Failures != 0 {
		t.Fatalf("busy provider's status: %d busy, %d failures; want busy, not failed", s.Busy, s.Failures)
	}
	if n := counter(t, d.Registry(), "satchel_distributor_fetch_errors_total"); n != 0 {
		t.Fatalf("%.0f fetch errors counted for busy answers", n)
	}

	// Every holder busy: the fetch waits, and the request succeeds once
	// one is free.
	if err := other.Kill(); err != nil {
		t.Fatal(err)
	}
	before = busy.RefusedGETs()
	type answer struct {
		code int
		body []byte
	}
	done := make(chan answer, 1)
	go func() {
		resp, err := http.Get(d.AssetURL(obj.ID))
		if err != nil {
			done <- answer{code: -1, body: []byte(err.Error())}
			return
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		_, _ = b.ReadFrom(resp.Body)
		done <- answer{resp.StatusCode, b.Bytes()}
	}()
	testnet.Wait(t, "the only live provider to refuse the fetch busy", func() bool { return busy.RefusedGETs() > before })
	release()
	if a := <-done; a.code != http.StatusOK || !bytes.Equal(a.body, data) {
		t.Fatalf("GET once the busy provider is free again: %d, %d bytes of %d", a.code, len(a.body), len(data))
	}

	// Busy for longer than the busy wait: 503 providers_busy, retry later
	// (before the answer starts: an object never read, whose root is
	// fetched first).
	release, err = busy.HoldFetchBudget(ctx, leaf)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	resp, body = get(t, d.AssetURL(unread.ID))
	var ae struct{ Type, Message string }
	_ = json.Unmarshal(body, &ae)
	if resp.StatusCode != http.StatusServiceUnavailable || ae.Type != "providers_busy" || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("GET while the only live provider stays busy: %d %s; want 503 providers_busy with Retry-After", resp.StatusCode, body)
	}
	if s := stats(); s.Failures != 0 {
		t.Fatalf("busy provider counted %d failures", s.Failures)
	}
	t.Log(ae.Message)
}
