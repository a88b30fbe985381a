package distributor_test

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/distributor"
	"github.com/satchel-net/satchel/testnet"
)

// The index holds no record per object: a thousand objects registered in
// two bags take a few ID runs, the records stay within their bound, and
// every object is still answered right (pending, not distributed here,
// served), records read back from the chain on demand. A deletion is
// followed within a block or two.
func TestIndexHoldsNoRecordPerObject(t *testing.T) {
	const records = 8
	e := newEnv(t, 1, distributor.WithObjectRecords(records))
	data := randomBytes(t, 20<<10)
	obj := e.put(t, data, 8<<10)
	if resp, body := get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != 200 || !bytes.Equal(body, data) {
		t.Fatalf("GET %d: %d", obj.ID, resp.StatusCode)
	}

	register := func(bag chain.BagID, n int) []chain.DataObject {
		specs := make([]chain.ObjectSpec, n)
		for i := range specs {
			specs[i] = chain.ObjectSpec{Size: 100, ContentID: obj.ContentID}
		}
		r, err := e.net.Client.Submit(e.ctx, e.net.Member, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs})
		if err != nil {
			t.Fatal(err)
		}
		reg, _ := chain.FindEvent[chain.ObjectsRegistered](r.Result.Events)
		return reg.Objects
	}
	res, err := e.net.Client.Submit(e.ctx, e.net.Member, chain.MsgCreateChannel{Member: e.net.MemberID, Title: "other"})
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := chain.FindEvent[chain.ChannelCreated](res.Result.Events)
	pending := register(e.net.Bag, 500)
	elsewhere := register(ch.Bag, 500)
	base := e.d.URL() + "/api/v1/assets/"
	waitStatus(t, base+elsewhere[len(elsewhere)-1].ID.String(), http.StatusMisdirectedRequest)

	srv := e.d.Server()
	check := func(when string) {
		t.Helper()
		runs, recs := srv.IndexFootprint()
		// The object put, the two batches, and whatever the network's
		// setup registered: a handful of runs, not a thousand.
		if runs > 6 || recs > records {
			t.Fatalf("%s: the index holds %d ID runs and %d records for 1001 objects; want at most 6 runs and %d records", when, runs, recs, records)
		}
	}
	check("after registering")
	for _, o := range pending[:50] {
		if resp, _ := do(t, http.MethodHead, base+o.ID.String()); resp.StatusCode != http.StatusNotFound || resp.Header.Get("Cache-Control") == "" {
			t.Fatalf("pending object %d: %d (Cache-Control %q), want 404 with a short max-age", o.ID, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	for _, o := range elsewhere[:50] {
		if resp, _ := do(t, http.MethodHead, base+o.ID.String()); resp.StatusCode != http.StatusMisdirectedRequest {
			t.Fatalf("object %d of another bag: %d, want 421", o.ID, resp.StatusCode)
		}
	}
	beyond := elsewhere[len(elsewhere)-1].ID + 1000
	if resp, _ := do(t, http.MethodHead, base+beyond.String()); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown object %d: %d, want 404", beyond, resp.StatusCode)
	}
	check("after lookups")
	// obj's record left the bounded cache long ago: read from the chain.
	if resp, body := get(t, e.d.AssetURL(obj.ID)); resp.StatusCode != 200 || !bytes.Equal(body, data) || resp.Header.Get("x-cache") != "hit" {
		t.Fatalf("GET %d after its record was dropped: %d, x-cache %q", obj.ID, resp.StatusCode, resp.Header.Get("x-cache"))
	}

	// Deleting objects cuts their IDs out of the runs.
	gone := []chain.ObjectID{obj.ID, pending[100].ID, pending[200].ID}
	if _, err := e.net.Client.Submit(e.ctx, e.net.Member, chain.MsgDeleteDataObjects{Bag: e.net.Bag, Objects: gone}); err != nil {
		t.Fatal(err)
	}
	testnet.Wait(t, "deleted objects no longer served", func() bool {
		return !srv.Serving(obj.ID) && !srv.Serving(pending[100].ID) && !srv.Cached(obj.ID)
	})
	for _, id := range gone {
		if resp, _ := do(t, http.MethodHead, base+id.String()); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("deleted object %d: %d, want 404", id, resp.StatusCode)
		}
	}
	if !srv.Serving(pending[150].ID) {
		t.Fatal("an object between the deleted ones is no longer served")
	}
	if runs, _ := srv.IndexFootprint(); runs > 10 {
		t.Fatalf("three deletions left %d ID runs", runs)
	}
	if st := srv.Status(); st.Objects != 1+500-3 {
		t.Fatalf("status counts %d objects served, want %d", st.Objects, 1+500-3)
	}
}
