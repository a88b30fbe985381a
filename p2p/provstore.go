package p2p

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	lru "github.com/hashicorp/golang-lru/simplelru"
	ds "github.com/ipfs/go-datastore"
	dssync "github.com/ipfs/go-datastore/sync"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-base32"
	mh "github.com/multiformats/go-multihash"
)

// ProviderLimits bound the DHT provider records a server keeps for other
// peers. kad-dht stores every ADD_PROVIDER a peer sends, for any key, for 48
// hours; without a bound one peer announcing random keys grows the node's
// heap by some 300 bytes a record for as long as it likes.
//
// Records of priority peers (Host.SetProviderPriority: on storage providers
// and distributors, the chain's active storage operators) cannot be crowded
// out by records of other peers, however many peer IDs those come from.
type ProviderLimits struct {
	// Records is the most records of other peers the node keeps in all.
	// When it is reached, a record of a peer holding at least two fewer
	// records than the peer holding the most takes the place of one of the
	// latter's (one fewer would only trade the place back and forth), so
	// a flood of records from one peer crowds out only that peer. A
	// record of a priority peer takes the place of a record of a peer
	// that is not, as long as there is one; a record of any other peer
	// never takes the place of a priority peer's. So a flood from many
	// fresh peer IDs, each holding few records, crowds out the other
	// peers that hold more, but never a priority peer. (Simpler than a
	// budget set aside for priority peers, which would sit idle on a node
	// they announce little to, and guarantees as much: priority peers
	// take room only as they need it, each at most PerPeer.)
	Records int
	// PerPeer is the most records one provider peer may have on the node,
	// priority or not; the record past it is refused (and kad-dht resets
	// the stream).
	PerPeer int
}

// DefaultProviderLimits bound a server to 131072 records of other peers (some
// 40 MiB of heap) and 32768 per provider peer, well above the bags one storage
// provider announces.
var DefaultProviderLimits = ProviderLimits{Records: 1 << 17, PerPeer: 1 << 15}

// ErrProviderRecordRefused is the error the provider record store returns for
// a record it does not keep: a key that is not a bag key's multihash, or a
// provider peer past its ProviderLimits.
var ErrProviderRecordRefused = errors.New("provider record refused")

// WithProviderLimits replaces DefaultProviderLimits.
func WithProviderLimits(l ProviderLimits) Option {
	return func(c *config) error {
		if l.Records < 1 || l.PerPeer < 1 || l.PerPeer > l.Records {
			return fmt.Errorf("WithProviderLimits: want 1 <= PerPeer (%d) <= Records (%d)", l.PerPeer, l.Records)
		}
		c.providers = l
		return nil
	}
}

// SetProviderPriority installs the rule naming the peers whose DHT provider
// records the host keeps first (see ProviderLimits); nil, the default,
// names none. A storage provider names the chain's active storage
// operators, the peers that announce the bags they store.
//
// The DHT calls priority for every provider record a peer announces,
// under its provider manager's lock: it must answer at once from memory
// (a cached set, never a chain read) and must not call the DHT.
//
// A record is kept as a priority peer's or not as priority said when it
// was stored or last re-announced (a storage provider re-announces its bags
// every 12 hours), and counted so until then: a peer whose priority changes
// moves its records one by one as it re-announces them, and one whose
// record was crowded out before it became priority gets it back then.
func (h *Host) SetProviderPriority(priority func(peer.ID) bool) {
	h.provs.setPriority(priority)
}

// providerKeyPrefix is where kad-dht's provider manager keeps its records:
// /providers/<base32 key>/<base32 peer ID>, valued with the time it was added.
const providerKeyPrefix = "/providers/"

// providerCacheKeys is the size of the provider manager's read cache, in keys,
// kad-dht's default.
const providerCacheKeys = 256

// The pools of records of other peers, indexes of providerStore.pools.
const (
	ordinaryPool = iota // records of peers not named by the priority rule
	priorityPool        // records of priority peers
)

// providerStore is the datastore under kad-dht's provider manager (given with
// dht.ProviderDatastore: v0.42.0 takes no custom ProviderStore). It is an
// in-memory map, as kad-dht's default, that refuses a provider record whose
// key is not a sha2-256 multihash (the form of every bag key, the only keys
// Satchel announces) and bounds the records of other peers by ProviderLimits.
// The node's own records are neither counted nor refused.
//
// It keeps the records of other peers in two pools, of priority peers and
// of the rest, each indexing its records by provider peer and its peers by
// their number of records, to find in constant time the record to take the
// place of when full.
type providerStore struct {
	ds.Batching // the records, for reads, queries and everything not overridden
	self        peer.ID
	limits      ProviderLimits
	// cache is the provider manager's read cache (records.Cache), which
	// evict clears of the key it takes a record from, lest the manager
	// still serve the record. The manager touches it, and calls Put, only
	// under its own lock.
	cache    lru.LRUCache
	priority atomic.Pointer[func(peer.ID) bool] // nil: no priority peers

	mu    sync.Mutex
	pools [2]recordPool // ordinaryPool, priorityPool; a record is in one
}

func newProviderStore(self peer.ID, l ProviderLimits, m *metrics) *providerStore {
	cache, err := lru.NewLRU(providerCacheKeys, nil)
	if err != nil {
		panic("p2p: provider cache: " + err.Error()) // only for a size < 1
	}
	s := &providerStore{
		cache:    cache,
		Batching: dssync.MutexWrap(ds.NewMapDatastore()),
		self:     self,
		limits:   l,
		pools:    [2]recordPool{newRecordPool(), newRecordPool()},
	}
	for i, name := range [...]string{ordinaryPool: "ordinary", priorityPool: "priority"} {
		if m != nil {
			s.pools[i].changed = func(d int) { m.providerRecordsDelta(name, d) }
		}
	}
	return s
}

// setPriority installs the priority rule; nil removes it.
func (s *providerStore) setPriority(priority func(peer.ID) bool) {
	if priority == nil {
		s.priority.Store(nil)
		return
	}
	s.priority.Store(&priority)
}

// poolFor returns the pool a record of p goes in now.
func (s *providerStore) poolFor(p peer.ID) int {
	if f := s.priority.Load(); f != nil && (*f)(p) {
		return priorityPool
	}
	return ordinaryPool
}

// records returns the number of other peers' records held, and how many of
// them are priority peers'.
func (s *providerStore) records() (all, priority int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total(), s.pools[priorityPool].total
}

// total returns the number of other peers' records held. s.mu is held.
func (s *providerStore) total() int {
	return s.pools[ordinaryPool].total + s.pools[priorityPool].total
}

// Put stores a record, refreshing one already held, within the limits.
func (s *providerStore) Put(ctx context.Context, key ds.Key, value []byte) error {
	k := key.String()
	if !strings.HasPrefix(k, providerKeyPrefix) {
		return s.Batching.Put(ctx, key, value)
	}
	dhtKey, p, err := parseProviderKey(k)
	if err != nil {
		return err
	}
	if p == s.self {
		return s.Batching.Put(ctx, key, value)
	}
	to := s.poolFor(p) // before the lock: the rule is the caller's code
	s.mu.Lock()
	defer s.mu.Unlock()
	for from := range s.pools {
		if s.pools[from].has(p, k) {
			if err := s.Batching.Put(ctx, key, value); err != nil {
				return err
			}
			if from != to { // the peer's priority changed
				s.pools[from].remove(p, k)
				s.pools[to].add(p, k)
			}
			return nil
		}
	}
	if err := s.admit(ctx, p, to); err != nil {
		s.cache.Remove(dhtKey)
		return err
	}
	if err := s.Batching.Put(ctx, key, value); err != nil {
		s.cache.Remove(dhtKey)
		return err
	}
	s.pools[to].add(p, k)
	return nil
}

// admit makes room for a new record of p in pool to, taking the place of
// another record when full, or refuses it. s.mu is held.
func (s *providerStore) admit(ctx context.Context, p peer.ID, to int) error {
	if n := s.pools[ordinaryPool].count(p) + s.pools[priorityPool].count(p); n >= s.limits.PerPeer {
		return fmt.Errorf("%w: peer %s has %d records, the most one peer may have", ErrProviderRecordRefused, p, n)
	}
	if s.total() < s.limits.Records {
		return nil
	}
	if to == priorityPool && s.pools[ordinaryPool].total > 0 {
		return s.evict(ctx, ordinaryPool)
	}
	if s.pools[to].most <= s.pools[to].count(p)+1 {
		if to == ordinaryPool {
			return fmt.Errorf("%w: the node holds %d records, %d of them priority peers', and no other peer holds more than %s would",
				ErrProviderRecordRefused, s.total(), s.pools[priorityPool].total, p)
		}
		return fmt.Errorf("%w: the node holds %d records, all priority peers', and none holds more than %s would", ErrProviderRecordRefused, s.total(), p)
	}
	return s.evict(ctx, to)
}

// Delete removes a record (kad-dht's expiry) and forgets it.
func (s *providerStore) Delete(ctx context.Context, key ds.Key) error {
	k := key.String()
	_, p, err := parseProviderKey(k)
	if err != nil || p == s.self {
		return s.Batching.Delete(ctx, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Batching.Delete(ctx, key); err != nil {
		return err
	}
	for i := range s.pools {
		if s.pools[i].has(p, k) {
			s.pools[i].remove(p, k)
		}
	}
	return nil
}

// Batch returns a batch that commits through Put and Delete, so a batched
// write is bounded as a single one.
func (s *providerStore) Batch(context.Context) (ds.Batch, error) {
	return ds.NewBasicBatch(s), nil
}

// evict removes one record of a peer holding the most records of pool,
// and drops its key from the provider manager's cache: the manager would
// still serve the record from there. s.mu is held.
func (s *providerStore) evict(ctx context.Context, pool int) error {
	victim, k, ok := s.pools[pool].largest()
	if !ok {
		return nil
	}
	if err := s.Batching.Delete(ctx, ds.RawKey(k)); err != nil && !errors.Is(err, ds.ErrNotFound) {
		return fmt.Errorf("provider records: evict: %w", err)
	}
	s.pools[pool].remove(victim, k)
	if dhtKey, _, err := parseProviderKey(k); err == nil {
		s.cache.Remove(dhtKey)
	}
	return nil
}

// parseProviderKey returns the DHT key (the multihash bytes, as a string:
// the provider manager's cache key) and the provider peer of a record key
// /providers/<base32 key>/<base32 peer ID>, refusing a key that is not a
// sha2-256 multihash (the form of BagKey on the DHT wire).
func parseProviderKey(k string) (dhtKey string, p peer.ID, err error) {
	rest, ok := strings.CutPrefix(k, providerKeyPrefix)
	if !ok {
		return "", "", fmt.Errorf("%w: key %q is not a provider record's", ErrProviderRecordRefused, k)
	}
	key, pid, ok := strings.Cut(rest, "/")
	if !ok {
		return "", "", fmt.Errorf("%w: key %q names no provider", ErrProviderRecordRefused, k)
	}
	kb, err := base32.RawStdEncoding.DecodeString(key)
	if err != nil {
		return "", "", fmt.Errorf("%w: key %q: %v", ErrProviderRecordRefused, k, err)
	}
	if d, err := mh.Decode(kb); err != nil || d.Code != mh.SHA2_256 || d.Length != 32 {
		return "", "", fmt.Errorf("%w: %d-byte key is not a sha2-256 multihash (a bag key)", ErrProviderRecordRefused, len(kb))
	}
	pb, err := base32.RawStdEncoding.DecodeString(pid)
	if err != nil {
		return "", "", fmt.Errorf("%w: provider in %q: %v", ErrProviderRecordRefused, k, err)
	}
	if p, err = peer.IDFromBytes(pb); err != nil {
		return "", "", fmt.Errorf("%w: provider in %q: %v", ErrProviderRecordRefused, k, err)
	}
	return string(kb), p, nil
}
