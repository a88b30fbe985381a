package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// objectBagEntries returns the committed object-ID index: object ID → the
// bags its entries name.
func objectBagEntries(t *testing.T, m *Machine) map[chain.ObjectID][]chain.BagID {
	t.Helper()
	es, err := m.reader().scan(keyObjectBag)
	if err != nil {
		t.Fatal(err)
	}
	out := map[chain.ObjectID][]chain.BagID{}
	for _, e := range es {
		rest := strings.TrimPrefix(e.key, keyObjectBag)
		if len(e.value) != 0 || len(rest) <= 8 {
			t.Fatalf("malformed index entry %q = %q", e.key, e.value)
		}
		id := chain.ObjectID(beUint(rest[:8]))
		out[id] = append(out[id], chain.BagID(rest[8:]))
	}
	return out
}

// byID asks QueryObjectByID plainly and proven, and requires both answers
// (or errors) to agree.
func byID(t *testing.T, m *Machine, id chain.ObjectID) (chain.DataObject, error) {
	t.Helper()
	obj, err := queryErr[chain.DataObject](m, chain.QueryObjectByID, id)
	_, hash, _ := m.Info()
	b, perr := VerifyWitness(proven(t, m, chain.QueryObjectByID, id), hash)
	switch {
	case errors.Is(perr, ErrBadProof):
		t.Fatalf("object %d: the honest witness fails: %v", id, perr)
	case chain.CodeOf(perr) != chain.CodeOf(err):
		t.Fatalf("object %d: proven answer %v, plain %v", id, perr, err)
	case err == nil:
		if want, _ := json.Marshal(obj); !bytes.Equal(b, want) {
			t.Fatalf("object %d: proven %s, plain %s", id, b, want)
		}
	}
	return obj, err
}

// TestObjectBagIndex: every object's bag is indexed from its registration
// to its deletion (by its owner or by expiry), through acceptance, and the
// index answers QueryObjectByID, proven.
func TestObjectBagIndex(t *testing.T) {
	const expiry = 20
	h := newHarness(t, func(g *chain.Genesis) { g.Limits.PendingObjectExpiry = expiry })
	op := testKey("operator")
	sb, w := h.operatedBucket(op, 100, 1<<20)
	h.do(storageLead, chain.MsgSetStorageDynamicBagPolicy{BagType: chain.ChannelBagType, StorageBuckets: 1})
	m := h.member(alice)
	bagA := chain.ChannelBag(h.channel(alice, m))
	bagB := chain.ChannelBag(h.channel(alice, m))
	for _, bag := range []chain.BagID{bagA, bagB} {
		if got := h.bag(bag).StorageBuckets; len(got) != 1 || got[0] != sb {
			t.Fatalf("bag %s in %v; want [%d]", bag, got, sb)
		}
	}
	h.registerObjects(alice, bagA, 3)
	h.registerObjects(alice, bagB, 3)
	objs := append(queryAs[[]chain.DataObject](t, h.m, chain.QueryObjects, bagA), queryAs[[]chain.DataObject](t, h.m, chain.QueryObjects, bagB)...)
	if len(objs) != 6 {
		t.Fatalf("%d objects registered; want 6", len(objs))
	}
	check := func(when string, live []chain.DataObject, gone ...chain.ObjectID) {
		t.Helper()
		ix := objectBagEntries(t, h.m)
		if len(ix) != len(live) {
			t.Fatalf("%s: index holds %d objects %v; want %d", when, len(ix), ix, len(live))
		}
		for _, o := range live {
			if bags := ix[o.ID]; len(bags) != 1 || bags[0] != o.Bag {
				t.Fatalf("%s: object %d indexed in %v; want [%s]", when, o.ID, bags, o.Bag)
			}
			got, err := byID(t, h.m, o.ID)
			if err != nil || got != o {
				t.Fatalf("%s: object %d by ID = %+v, %v; want %+v", when, o.ID, got, err, o)
			}
		}
		for _, id := range gone {
			if _, err := byID(t, h.m, id); !errors.Is(err, chain.ErrObjectNotFound) {
				t.Fatalf("%s: object %d by ID: %v; want ErrObjectNotFound", when, id, err)
			}
		}
	}
	check("registered", objs, 0, objs[5].ID+1, 1<<62)

	// Acceptance rewrites the record; the entry stays.
	h.do(op, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: sb, Bag: bagA, Objects: []chain.ObjectID{objs[0].ID, objs[1].ID}})
	h.do(op, chain.MsgAcceptPendingDataObjects{Worker: w, Bucket: sb, Bag: bagB, Objects: []chain.ObjectID{objs[3].ID}})
	for _, i := range []int{0, 1, 3} {
		objs[i].Accepted, objs[i].ExpiresAt = true, 0
	}
	check("accepted", objs)

	// The owner deletes one of each bag.
	h.do(alice, chain.MsgDeleteDataObjects{Bag: bagA, Objects: []chain.ObjectID{objs[1].ID}})
	h.do(alice, chain.MsgDeleteDataObjects{Bag: bagB, Objects: []chain.ObjectID{objs[4].ID}})
	live := []chain.DataObject{objs[0], objs[2], objs[3], objs[5]}
	check("deleted", live, objs[1].ID, objs[4].ID)

	// The ones never accepted expire.
	for h.height < objs[5].ExpiresAt {
		h.block()
	}
	check("expired", []chain.DataObject{objs[0], objs[3]}, objs[2].ID, objs[5].ID)
}

// TestObjectByIDArgument: a bad argument is ErrInvalid and reads nothing.
func TestObjectByIDArgument(t *testing.T) {
	h := newHarness(t)
	for _, arg := range []any{nil, "one", -1} {
		if _, err := queryErr[chain.DataObject](h.m, chain.QueryObjectByID, arg); !errors.Is(err, chain.ErrInvalid) {
			t.Errorf("argument %v: %v; want ErrInvalid", arg, err)
		}
	}
}

// TestObjectByIDWitnessIsChecked: a node that hides the index entry, or
// names another bag in it, is caught by the proofs.
func TestObjectByIDWitnessIsChecked(t *testing.T) {
	h := newHarness(t)
	bag, _ := h.channelBag(100, 1<<20)
	other := chain.ChannelBag(h.channel(alice, h.member(alice)))
	h.registerObjects(alice, bag, 2)
	h.registerObjects(alice, other, 2)
	objs := queryAs[[]chain.DataObject](t, h.m, chain.QueryObjects, bag)
	id := objs[1].ID
	_, hash, _ := h.m.Info()
	entry := func(w *Witness) *ProvenScan {
		for i, s := range w.Scans {
			if bytes.Equal(s.Prefix, []byte(objectBagPrefix(id))) {
				return &w.Scans[i]
			}
		}
		t.Fatalf("the witness scans no object-ID index entry: %+v", w)
		return nil
	}
	cases := map[string]func(*Witness){
		"hidden entry": func(w *Witness) {
			s := entry(w)
			s.Keys, s.Values, s.Paths, s.Shared, s.Next = nil, nil, nil, nil, nil
		},
		"other bag": func(w *Witness) {
			s := entry(w)
			s.Keys[0] = []byte(objectBagKey(id, other))
		},
		"other object": func(w *Witness) {
			for i, g := range w.Gets {
				if string(g.Key) == objectKey(bag, id) {
					w.Gets[i].Value = bytes.Replace(g.Value, []byte(objs[1].ContentID), []byte(objs[0].ContentID), 1)
				}
			}
		},
	}
	for name, alter := range cases {
		t.Run(name, func(t *testing.T) {
			w := proven(t, h.m, chain.QueryObjectByID, id)
			alter(&w)
			if b, err := VerifyWitness(w, hash); !errors.Is(err, ErrBadProof) {
				t.Fatalf("VerifyWitness = %s, %v; want ErrBadProof", b, err)
			}
		})
	}
}

// TestProvenUnknownPathIsBare: a proven query of a path the node does not
// know answers ErrUnknownQuery bare, as chain/verify passes it through, not
// a witness of no reads, which a client that knows the path (newer than the
// node, say asking QueryObjectByID) would take for a lie.
func TestProvenUnknownPathIsBare(t *testing.T) {
	h := newHarness(t)
	h.block()
	req, _ := json.Marshal(chain.ProvenQuery{Path: "/object/by-nothing", Data: []byte("1")})
	if b, err := h.m.Query(chain.QueryProven, req); !errors.Is(err, chain.ErrUnknownQuery) {
		t.Fatalf("proven unknown path = %s, %v; want ErrUnknownQuery", b, err)
	}
}

// TestObjectByIDBeforeTheIndex: a chain started before the object-ID
// index has no keyObjectsIndexed, so an ID the index lacks (an object
// registered then, or none) is plain ErrNotFound, which tells a client to
// search the bags; with the marker, which genesis writes, it is
// ErrObjectNotFound: no object has the ID.
func TestObjectByIDBeforeTheIndex(t *testing.T) {
	h := newHarness(t)
	committed := h.m.reader()
	if _, ok, err := committed.get(keyObjectsIndexed); err != nil || !ok {
		t.Fatalf("genesis wrote no %s (%v)", keyObjectsIndexed, err)
	}
	_, err := query(committed, h.height, nil, chain.QueryObjectByID, []byte("7"))
	if !errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("unknown object with the index complete: %v; want ErrObjectNotFound", err)
	}
	old := newCache(committed)
	old.del(keyObjectsIndexed)
	_, err = query(old, h.height, nil, chain.QueryObjectByID, []byte("7"))
	if !errors.Is(err, chain.ErrNotFound) || errors.Is(err, chain.ErrObjectNotFound) {
		t.Fatalf("unknown object in a state from before the index: %v; want plain ErrNotFound", err)
	}
}
