package state

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// indexObjectIDsLoadingAll is the migration to VersionObjectIndex as it
// was first written: it loads every object record at once (cache.scan).
// It is the reference the streaming one (indexObjectIDs) must match byte
// for byte.
func indexObjectIDsLoadingAll(c *cache) error {
	objs, err := c.scan(keyObject)
	if err != nil {
		return err
	}
	for _, e := range objs {
		var o chain.DataObject
		if err := json.Unmarshal(e.value, &o); err != nil {
			return fmt.Errorf("object record %q: %w", e.key, err)
		}
		c.set(objectBagKey(o.ID, o.Bag), nil)
	}
	c.set(keyObjectsIndexed, []byte{1})
	return nil
}

// withMigration runs the upgrade to VersionObjectIndex with mig until the
// test ends.
func withMigration(t *testing.T, mig func(*cache) error) {
	prev := migrations[VersionObjectIndex]
	migrations[VersionObjectIndex] = mig
	t.Cleanup(func() { migrations[VersionObjectIndex] = prev })
}

// sameWrites fails unless a and b hold the same keys with the same values
// (a deletion, nil, differs from an empty value).
func sameWrites(t *testing.T, a, b map[string][]byte) {
	t.Helper()
	if len(a) != len(b) {
		t.Fatalf("%d writes and %d writes", len(a), len(b))
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || (v == nil) != (w == nil) || !bytes.Equal(v, w) {
			t.Fatalf("write %q: %q and %q (present %v)", k, v, w, ok)
		}
	}
}

// TestStreamingMigrationMatchesLoadingAll: on the same version 2 state —
// committed objects, one deleted before the upgrade — an upgrade block
// that registers objects, deletes a committed one and registers and
// deletes another in the block ends with the same writes and the same app
// hash under the streaming migration as under the one that loads every
// record, and the committed state is complete.
func TestStreamingMigrationMatchesLoadingAll(t *testing.T) {
	h := newHarness(t, atVersion(VersionMerkle))
	bag, _ := h.channelBag(100, 1<<20)
	other := chain.ChannelBag(h.channel(alice, h.member(alice))) // in the same bucket
	var ids []chain.ObjectID
	for i := range 40 {
		b := bag
		if i%3 == 0 {
			b = other
		}
		ids = append(ids, h.register(b, fmt.Sprint("obj", i)))
	}
	h.do(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{ids[1]}})
	at := h.height + 1 + chain.MinUpgradeDelay
	h.do(storageLead, chain.MsgUpgradeAppVersion{Version: VersionObjectIndex, Height: at})
	for h.height < at-1 {
		h.block()
	}

	// The next object ID (the counter plus one: IDs start at 1), for a
	// deletion of an object the block registers.
	seq, err := store{newCache(h.m.reader())}.getUint(keySeq + seqObject)
	if err != nil {
		t.Fatal(err)
	}
	next := chain.ObjectID(seq + 1)
	txs := [][]byte{
		h.sign(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{
			{Size: 10, ContentID: testCID("new in block")}, {Size: 10, ContentID: testCID("gone in block")}}}),
		h.sign(alice, chain.MsgDeleteDataObjects{Bag: bag, Objects: []chain.ObjectID{ids[2], next + 1}}),
		h.sign(alice, chain.MsgRegisterDataObjects{Bag: other, Objects: []chain.ObjectSpec{{Size: 10, ContentID: testCID("other in block")}}}),
	}
	info := chain.BlockInfo{Height: at, Time: genesisTime.Add(time.Duration(at) * time.Second), Hash: h.hashFor(at)}
	finalize := func(mig func(*cache) error) (map[string][]byte, []byte) {
		t.Helper()
		withMigration(t, mig)
		res, hash, err := h.m.FinalizeBlock(info, txs)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if r.Code != 0 {
				t.Fatalf("tx %d of the upgrade block: %s", i, r.Log)
			}
		}
		if got := h.m.UpgradedTo(); got != VersionObjectIndex {
			t.Fatalf("UpgradedTo = %d", got)
		}
		return h.m.pending.writes.writes, hash
	}
	oldWrites, oldHash := finalize(indexObjectIDsLoadingAll)
	newWrites, newHash := finalize(indexObjectIDs)
	sameWrites(t, oldWrites, newWrites)
	if !bytes.Equal(oldHash, newHash) {
		t.Fatalf("app hash %X under the streaming migration, %X under the reference", newHash, oldHash)
	}
	// The block's own writes and deletions reached the migration.
	for key, want := range map[string]bool{
		objectBagKey(ids[0], other):  true,
		objectBagKey(ids[1], bag):    false, // deleted before the block
		objectBagKey(ids[2], bag):    false, // deleted in the block
		objectBagKey(next, bag):      true,  // registered in the block
		objectBagKey(next+1, bag):    false, // registered and deleted in it
		objectBagKey(next+2, other):  true,
		objectBagKey(next+3, bag):    false, // never registered
		objectBagKey(next+2, bag):    false, // wrong bag
		objectBagKey(ids[38], bag):   true,
		objectBagKey(ids[39], other): true,
	} {
		if v, ok := newWrites[key]; ok != want || (ok && v == nil) {
			t.Errorf("index entry %q written: %v; want %v", key, ok, want)
		}
	}
	if err := h.m.Commit(); err != nil {
		t.Fatal(err)
	}
	h.height = at
	assertIndexComplete(t, h)
}

// TestIterateMatchesScan: over a committed state, a block cache and a
// transaction cache with random writes and deletions (of keys the state
// has and keys it lacks, under the prefix and beside it), cache.iterate
// walks exactly the entries cache.scan returns, in the same order, at
// every layer; an error from the walker stops the walk and is returned.
func TestIterateMatchesScan(t *testing.T) {
	m, err := NewMemory()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if _, err := m.InitChain(testGenesis(), genesisTime); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() string {
		p := []string{"s/obj/a\x00", "s/obj/b\x00", "s/oba", "s/obk", "s/ix/obj/"}[rng.IntN(5)]
		return p + u64(uint64(rng.IntN(300)))
	}
	m.mu.Lock()
	blk := newCache(m.committedReader())
	for range 400 {
		blk.set(key(), []byte(fmt.Sprint("v", rng.IntN(1000))))
	}
	hash, err := m.stage(blk)
	if err == nil {
		m.pending = &pendingBlock{height: 1, appHash: hash, writes: blk}
	}
	m.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Commit(); err != nil {
		t.Fatal(err)
	}

	for round := range 20 {
		fr := &faultReader{parent: m.reader()}
		blk := newCache(fr)
		tx := newCache(blk)
		for _, c := range []*cache{blk, tx} {
			for range rng.IntN(200) {
				switch k := key(); rng.IntN(3) {
				case 0:
					c.del(k)
				case 1:
					c.set(k, nil)
				default:
					c.set(k, []byte(fmt.Sprint("w", rng.IntN(1000))))
				}
			}
		}
		for _, r := range []reader{m.reader(), fr, blk, tx} {
			for _, prefix := range []string{keyObject, "s/obj/a\x00", "s/ob", "s/none/"} {
				want, err := r.scan(prefix)
				if err != nil {
					t.Fatal(err)
				}
				var got []kv
				err = iterateReader(r, prefix, func(k string, v []byte) error {
					got = append(got, kv{k, v})
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != len(want) {
					t.Fatalf("round %d, %T, prefix %q: iterate walked %d entries, scan returned %d", round, r, prefix, len(got), len(want))
				}
				for i := range want {
					if got[i].key != want[i].key || !bytes.Equal(got[i].value, want[i].value) {
						t.Fatalf("round %d, %T, prefix %q, entry %d: iterate %q=%q, scan %q=%q", round, r, prefix, i, got[i].key, got[i].value, want[i].key, want[i].value)
					}
				}
			}
		}
		stop := fmt.Errorf("stop")
		n := 0
		err := tx.iterate(keyObject, func(string, []byte) error {
			n++
			if n == 3 {
				return stop
			}
			return nil
		})
		if err != stop || n != 3 || fr.err != nil {
			t.Fatalf("walk stopped at entry 3: %v after %d entries, fault %v", err, n, fr.err)
		}
	}
}

// TestStreamingMigrationBadRecord: a record that is not an object fails
// both migrations with the same error, naming the record.
func TestStreamingMigrationBadRecord(t *testing.T) {
	h := newHarness(t, atVersion(VersionMerkle))
	bag, _ := h.channelBag(100, 1<<20)
	h.register(bag, "a")
	h.register(bag, "b")
	var errs []string
	for _, mig := range []func(*cache) error{indexObjectIDsLoadingAll, indexObjectIDs} {
		c := newCache(newCache(h.m.reader()))
		c.parent.(*cache).set(objectKey(bag, 1), []byte("not json"))
		err := mig(c)
		if err == nil {
			t.Fatal("a migration over a bad record succeeded")
		}
		errs = append(errs, err.Error())
	}
	if errs[0] != errs[1] || !strings.Contains(errs[1], "object record") {
		t.Fatalf("errors %q and %q; want the same, naming the record", errs[0], errs[1])
	}
}
