package p2p

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ds "github.com/ipfs/go-datastore"
	dsq "github.com/ipfs/go-datastore/query"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
	"github.com/multiformats/go-base32"
	mh "github.com/multiformats/go-multihash"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// TestProviderPriorityPools drives the store as kad-dht's provider manager
// does: a swarm of fresh peer IDs cannot take the place of a priority
// peer's records, priority peers share a store they fill fairly, and a
// peer whose priority changes moves its records as it re-announces them,
// the counters following.
func TestProviderPriorityPools(t *testing.T) {
	s := newProviderStore(newTestPeer(t), ProviderLimits{Records: 10, PerPeer: 8}, nil)
	prio := map[peer.ID]bool{}
	s.setPriority(func(p peer.ID) bool { return prio[p] })
	op, op2 := newTestPeer(t), newTestPeer(t)
	prio[op], prio[op2] = true, true

	for i := range 6 {
		mustPut(t, s, op, fmt.Sprint("op ", i))
	}
	for i := range 20 { // 40 records of fresh IDs, in a store of 10
		sybil := newTestPeer(t)
		for j := range 2 {
			_ = putRecord(t, s, sybil, fmt.Sprint("sybil ", i, j))
		}
	}
	wantRecords(t, s, 10, 6)
	if held := heldOf(t, s, op, "op ", 6); held != 6 {
		t.Fatalf("after the flood the priority peer keeps %d of its 6 records", held)
	}

	for i := range 4 { // a priority peer takes the place of the others
		mustPut(t, s, op2, fmt.Sprint("op2 ", i))
	}
	wantRecords(t, s, 10, 10)
	if err := putRecord(t, s, newTestPeer(t), "late sybil"); !errors.Is(err, ErrProviderRecordRefused) {
		t.Fatalf("a record of a fresh ID on a store full of priority records: %v, want refused", err)
	}
	mustPut(t, s, op2, "op2 4") // priority peers: fewer takes from most
	if a, b := heldOf(t, s, op, "op ", 6), heldOf(t, s, op2, "op2 ", 5); a != 5 || b != 5 {
		t.Fatalf("priority peers hold %d and %d records, want 5 each", a, b)
	}
	if err := putRecord(t, s, op2, "op2 5"); !errors.Is(err, ErrProviderRecordRefused) {
		t.Fatalf("a priority peer past an even share of a full store: %v, want refused", err)
	}
	wantRecords(t, s, 10, 10)

	// op stops operating: a record it re-announces is counted as any peer's,
	// and the first to go when a priority record needs room.
	prio[op] = false
	var moved string
	for i := range 6 {
		if has(t, s, op, fmt.Sprint("op ", i)) {
			moved = fmt.Sprint("op ", i)
			mustPut(t, s, op, moved)
			break
		}
	}
	wantRecords(t, s, 10, 9)
	mustPut(t, s, op2, "op2 5")
	wantRecords(t, s, 10, 10)
	if has(t, s, op, moved) {
		t.Fatal("a priority record took the place of a priority peer's, not of the record of the former one")
	}
	if err := s.Delete(context.Background(), recordKey(t, op2, "op2 5")); err != nil {
		t.Fatal(err)
	}
	wantRecords(t, s, 9, 9)
}

// TestProviderPriorityExpiry runs kad-dht's provider manager on the store:
// records of many peers, added concurrently while the priority rule flips
// for some of them, are evicted and then expire (the manager's collection),
// and the counters match the records held throughout and end at zero.
func TestProviderPriorityExpiry(t *testing.T) {
	self := newTestPeer(t)
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	s := newProviderStore(self, ProviderLimits{Records: 40, PerPeer: 20}, m)
	// The gauge of each pool follows its records.
	gauges := func() {
		t.Helper()
		s.mu.Lock()
		defer s.mu.Unlock()
		for pool, name := range map[int]string{ordinaryPool: "ordinary", priorityPool: "priority"} {
			var d dto.Metric
			if err := m.providerRecords.WithLabelValues(name).Write(&d); err != nil {
				t.Fatal(err)
			}
			if got := d.GetGauge().GetValue(); got != float64(s.pools[pool].total) {
				t.Fatalf("%s records gauge %v, the pool holds %d", name, got, s.pools[pool].total)
			}
		}
	}
	var flip atomic.Bool
	ops := []peer.ID{newTestPeer(t), newTestPeer(t)}
	s.setPriority(func(p peer.ID) bool { return p == ops[0] || (p == ops[1] && flip.Load()) })
	const validity = 300 * time.Millisecond
	ps, err := pstoremem.NewPeerstore()
	if err != nil {
		t.Fatal(err)
	}
	defer ps.Close()
	pm, err := records.NewProviderManager(self, ps, s, records.Cache(s.cache),
		records.ProvideValidity(validity), records.CleanupInterval(validity/10))
	if err != nil {
		t.Fatal(err)
	}
	defer pm.Close()
	ctx := context.Background()

	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 30 {
				p := newTestPeer(t)
				if i%3 == 0 {
					p = ops[i%2]
					flip.Store(i%2 == 0)
				}
				key := testKey(t, fmt.Sprint(w, " ", i))
				_ = pm.AddProvider(ctx, key, peer.AddrInfo{ID: p})
				_, _ = pm.GetProviders(ctx, key)
			}
		})
	}
	wg.Wait()
	checkIndex(t, s)
	gauges()
	if all, _ := s.records(); all > 40 {
		t.Fatalf("the store holds %d records, more than 40", all)
	}

	deadline := time.After(time.Minute)
	for {
		checkIndex(t, s)
		if all, prio := s.records(); all == 0 && prio == 0 {
			gauges()
			break
		}
		select {
		case <-deadline:
			all, prio := s.records()
			t.Fatalf("records never expired: %d held, %d of priority peers", all, prio)
		case <-time.After(validity / 10):
		}
	}
}

// checkIndex fails t unless the store's pools count exactly the records of
// other peers it holds, each in one pool, with the right per-peer counts.
func checkIndex(t *testing.T, s *providerStore) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	res, err := s.Batching.Query(context.Background(), dsq.Query{Prefix: providerKeyPrefix, KeysOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	entries, err := res.Rest()
	if err != nil {
		t.Fatal(err)
	}
	stored := 0
	for _, e := range entries {
		_, p, err := parseProviderKey(e.Key)
		if err != nil || p == s.self {
			continue
		}
		stored++
		if s.pools[ordinaryPool].has(p, e.Key) == s.pools[priorityPool].has(p, e.Key) {
			t.Fatalf("record %s is in both pools or in neither", e.Key)
		}
	}
	for i, rp := range s.pools {
		total, most := 0, 0
		for p, keys := range rp.byPeer {
			if len(keys) == 0 {
				t.Fatalf("pool %d: peer %s indexed without records", i, p)
			}
			if _, ok := rp.byCount[len(keys)][p]; !ok {
				t.Fatalf("pool %d: peer %s with %d records not indexed by that count", i, p, len(keys))
			}
			total += len(keys)
			most = max(most, len(keys))
		}
		peers := 0
		for _, set := range rp.byCount {
			peers += len(set)
		}
		if total != rp.total || most != rp.most || peers != len(rp.byPeer) {
			t.Fatalf("pool %d counts %d records, most %d, %d peers; holds %d, most %d, %d peers",
				i, rp.total, rp.most, peers, total, most, len(rp.byPeer))
		}
	}
	if n := s.total(); n != stored {
		t.Fatalf("the pools count %d records; the store holds %d", n, stored)
	}
}

func newTestPeer(t *testing.T) peer.ID {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// testKey returns the sha2-256 multihash of tag, a bag key's form.
func testKey(t *testing.T, tag string) []byte {
	t.Helper()
	sum, err := mh.Sum([]byte(tag), mh.SHA2_256, -1)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// recordKey returns the datastore key of p's record for tag's key, as
// kad-dht's provider manager writes it.
func recordKey(t *testing.T, p peer.ID, tag string) ds.Key {
	t.Helper()
	enc := base32.RawStdEncoding.EncodeToString
	return ds.NewKey(providerKeyPrefix + enc(testKey(t, tag)) + "/" + enc([]byte(p)))
}

func putRecord(t *testing.T, s *providerStore, p peer.ID, tag string) error {
	t.Helper()
	return s.Put(context.Background(), recordKey(t, p, tag), []byte{1})
}

func mustPut(t *testing.T, s *providerStore, p peer.ID, tag string) {
	t.Helper()
	if err := putRecord(t, s, p, tag); err != nil {
		t.Fatalf("record %q of %s: %v", tag, p, err)
	}
}

func has(t *testing.T, s *providerStore, p peer.ID, tag string) bool {
	t.Helper()
	ok, err := s.Has(context.Background(), recordKey(t, p, tag))
	if err != nil {
		t.Fatal(err)
	}
	return ok
}

// heldOf counts the records of p held for tags prefix+"0" … prefix+"n-1".
func heldOf(t *testing.T, s *providerStore, p peer.ID, prefix string, n int) int {
	t.Helper()
	held := 0
	for i := range n {
		if has(t, s, p, fmt.Sprint(prefix, i)) {
			held++
		}
	}
	return held
}

func wantRecords(t *testing.T, s *providerStore, all, prio int) {
	t.Helper()
	checkIndex(t, s)
	if a, p := s.records(); a != all || p != prio {
		t.Fatalf("the store counts %d records, %d of priority peers; want %d, %d", a, p, all, prio)
	}
}
