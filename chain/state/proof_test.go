package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	ics23 "github.com/cosmos/ics23/go"
	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chain"
)

// numberedCID returns a valid CIDv1 (raw, sha2-256) for i.
func numberedCID(t testing.TB, i int) string {
	t.Helper()
	h, err := multihash.Sum([]byte(fmt.Sprint("object ", i)), multihash.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return cid.NewCidV1(cid.Raw, h).String()
}

// registerObjects registers n objects in bag, 50 per transaction.
func (h *harness) registerObjects(k chain.Key, bag chain.BagID, n int) {
	h.t.Helper()
	for done := 0; done < n; {
		var specs []chain.ObjectSpec
		for ; done < n && len(specs) < 50; done++ {
			specs = append(specs, chain.ObjectSpec{Size: 10, ContentID: numberedCID(h.t, done)})
		}
		h.do(k, chain.MsgRegisterDataObjects{Bag: bag, Objects: specs})
	}
}

// proven asks m for the witness of a query.
func proven(t *testing.T, m *Machine, path string, arg any) Witness {
	t.Helper()
	var data []byte
	if arg != nil {
		data, _ = json.Marshal(arg)
	}
	height, _, _ := m.Info()
	req, _ := json.Marshal(chain.ProvenQuery{Path: path, Data: data, MinHeight: height})
	b, err := m.Query(chain.QueryProven, req)
	if err != nil {
		t.Fatalf("proven %s: %v", path, err)
	}
	var w Witness
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestProvenQueriesMatchPlainOnes(t *testing.T) {
	h := newHarness(t)
	bag, sb := h.channelBag(1000, 1<<20)
	h.registerObjects(alice, bag, 120)
	_, hash, _ := h.m.Info()
	cases := []struct {
		path string
		arg  any
	}{
		{chain.QueryInfo, nil},
		{chain.QueryParams, nil},
		{chain.QueryAccount, alice.Account()},
		{chain.QueryAccount, mallory.Account()},
		{chain.QueryBag, bag},
		{chain.QueryBags, nil},
		{chain.QueryObjects, bag},
		{chain.QueryObject, chain.ObjectRef{Bag: bag, ID: 7}},
		{chain.QueryStorageBucket, sb},
		{chain.QueryStorageBuckets, nil},
		{chain.QueryDistributionFamilies, nil},
		{chain.QueryMember, chain.MemberID(0)},
		{chain.QueryWorkers, chain.StorageGroup},
		{chain.QueryAppVersion, nil},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			var data []byte
			if c.arg != nil {
				data, _ = json.Marshal(c.arg)
			}
			want, err := h.m.Query(c.path, data)
			if err != nil {
				t.Fatal(err)
			}
			got, err := VerifyWitness(proven(t, h.m, c.path, c.arg), hash)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("proven answer\n%s\nwant\n%s", got, want)
			}
		})
	}
	// Without MinHeight the answer is at the height before the last, whose
	// app hash the last header signs.
	prevHash := h.m.previous.Hash()
	req, _ := json.Marshal(chain.ProvenQuery{Path: chain.QueryBags})
	b, err := h.m.Query(chain.QueryProven, req)
	if err != nil {
		t.Fatal(err)
	}
	var w Witness
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if w.Height != h.height-1 {
		t.Fatalf("default proven height %d; want %d", w.Height, h.height-1)
	}
	if _, err := VerifyWitness(w, prevHash); err != nil {
		t.Fatal(err)
	}
	// A proven absence is the query's own error.
	_, err = VerifyWitness(proven(t, h.m, chain.QueryBag, chain.ChannelBag(999)), hash)
	if !errors.Is(err, chain.ErrBagNotFound) {
		t.Fatalf("unknown bag: %v; want ErrBagNotFound", err)
	}
}

func TestProvenQueryRefusesTampering(t *testing.T) {
	h := newHarness(t)
	bag, _ := h.channelBag(1000, 1<<20)
	h.registerObjects(alice, bag, 30)
	_, hash, _ := h.m.Info()
	objects := func() Witness { return proven(t, h.m, chain.QueryObjects, bag) }
	bagW := func() Witness { return proven(t, h.m, chain.QueryBag, bag) }
	scanOf := func(w Witness) *ProvenScan {
		for i := range w.Scans {
			if len(w.Scans[i].Keys) == 30 {
				return &w.Scans[i]
			}
		}
		t.Fatal("no scan of the bag's objects")
		return nil
	}
	cases := map[string]func() Witness{
		"altered object": func() Witness {
			w := objects()
			s := scanOf(w)
			s.Values[3] = bytes.Replace(s.Values[3], []byte(`"size":10`), []byte(`"size":11`), 1)
			return w
		},
		"object left out of the middle": func() Witness {
			w := objects()
			s := scanOf(w)
			s.Keys = append(s.Keys[:5], s.Keys[6:]...)
			s.Values = append(s.Values[:5], s.Values[6:]...)
			s.Paths = append(s.Paths[:5], s.Paths[6:]...)
			s.Shared = append(s.Shared[:5], s.Shared[6:]...)
			return w
		},
		"object left out of the middle, proofs made whole": func() Witness {
			w := objects()
			s := scanOf(w)
			full := fullProofs(t, s)
			s.Keys = append(s.Keys[:5], s.Keys[6:]...)
			s.Values = append(s.Values[:5], s.Values[6:]...)
			recut(t, s, append(full[:5], full[6:]...))
			return w
		},
		"last object left out": func() Witness {
			w := objects()
			s := scanOf(w)
			n := len(s.Keys) - 1
			s.Keys, s.Values, s.Paths, s.Shared, s.Next = s.Keys[:n], s.Values[:n], s.Paths[:n], s.Shared[:n], nil
			return w
		},
		"first object left out, proofs made whole": func() Witness {
			w := objects()
			s := scanOf(w)
			full := fullProofs(t, s)
			s.Keys, s.Values = s.Keys[1:], s.Values[1:]
			recut(t, s, full[1:])
			return w
		},
		"shared ops miscounted": func() Witness {
			w := objects()
			s := scanOf(w)
			s.Shared[7]++
			return w
		},
		"proofs of two entries swapped": func() Witness {
			w := objects()
			s := scanOf(w)
			s.Paths[3], s.Paths[4] = s.Paths[4], s.Paths[3]
			s.Shared[3], s.Shared[4] = s.Shared[4], s.Shared[3]
			return w
		},
		"objects said to be none": func() Witness {
			w := objects()
			s := scanOf(w)
			s.Keys, s.Values, s.Paths, s.Shared, s.Next = nil, nil, nil, nil, nil
			return w
		},
		"bag said to be missing": func() Witness {
			w := bagW()
			w.Gets[0].Found, w.Gets[0].Value = false, nil
			return w
		},
		"read left out": func() Witness {
			w := bagW()
			w.Gets = nil
			return w
		},
	}
	// The liar's tools are honest: proofs cut again from whole ones verify.
	w := objects()
	s := scanOf(w)
	recut(t, s, fullProofs(t, s))
	if _, err := VerifyWitness(w, hash); err != nil {
		t.Fatalf("proofs cut again: %v", err)
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := VerifyWitness(tamper(), hash); !errors.Is(err, ErrBadProof) {
				t.Fatalf("VerifyWitness = %v; want ErrBadProof", err)
			}
		})
	}
	// Honest proofs against another app hash fail too.
	other := bytes.Clone(hash)
	other[0] ^= 1
	if _, err := VerifyWitness(objects(), other); !errors.Is(err, ErrBadProof) {
		t.Fatalf("VerifyWitness against a wrong app hash = %v; want ErrBadProof", err)
	}
}

// fullProofs rebuilds the whole ExistenceProof of every entry of s, as a
// liar holding honest proofs would.
func fullProofs(t *testing.T, s *ProvenScan) []*ics23.ExistenceProof {
	t.Helper()
	out := make([]*ics23.ExistenceProof, len(s.Keys))
	for i := range s.Keys {
		var p ics23.ExistenceProof
		if err := p.Unmarshal(s.Paths[i]); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			prev := out[i-1].Path
			p.Path = append(p.Path, prev[len(prev)-s.Shared[i]:]...)
		}
		p.Key, p.Value = s.Keys[i], s.Values[i]
		out[i] = &p
	}
	return out
}

// recut sets the proofs of s from whole proofs, as the node does.
func recut(t *testing.T, s *ProvenScan, full []*ics23.ExistenceProof) {
	t.Helper()
	s.Paths, s.Shared = nil, nil
	for i, p := range full {
		shared := 0
		if i > 0 {
			shared = sharedTop(full[i-1].Path, p.Path)
		}
		b, err := (&ics23.ExistenceProof{Leaf: p.Leaf, Path: p.Path[:len(p.Path)-shared]}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s.Paths, s.Shared = append(s.Paths, b), append(s.Shared, shared)
	}
}

func TestProvenQueryIsBounded(t *testing.T) {
	m, bag := benchMachine(t)
	fillObjects(t, m, bag, 0, MaxProvenEntries+1, MaxProvenEntries+1)
	height, _, _ := m.Info()
	data, _ := json.Marshal(bag)
	req, _ := json.Marshal(chain.ProvenQuery{Path: chain.QueryObjects, Data: data, MinHeight: height})
	if _, err := m.Query(chain.QueryProven, req); !errors.Is(err, chain.ErrInvalid) {
		t.Fatalf("proven list of %d objects: %v; want ErrInvalid", MaxProvenEntries+1, err)
	}
	// Page by page it is proven.
	w := proven(t, m, chain.QueryObjectsPage, chain.BagObjectsRequest{Bag: bag, PageRequest: chain.PageRequest{Limit: chain.MaxPageLimit}})
	_, hash, _ := m.Info()
	if _, err := VerifyWitness(w, hash); err != nil {
		t.Fatal(err)
	}
}
