package p2p

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

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
type ProviderLimits struct {
	// Records is the most records of other peers the node keeps in all.
	// When it is reached, a record of a peer holding fewer records than
	// the peer holding the most takes the place of one of the latter's, so
	// a flood of records crowds out only the flooders: a storage provider
	// that announces its own bags still gets in.
	Records int
	// PerPeer is the most records one provider peer may have on the node;
	// the record past it is refused (and kad-dht resets the stream).
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

// providerKeyPrefix is where kad-dht's provider manager keeps its records:
// /providers/<base32 key>/<base32 peer ID>, valued with the time it was added.
const providerKeyPrefix = "/providers/"

// providerCacheKeys is the size of the provider manager's read cache, in keys,
// kad-dht's default.
const providerCacheKeys = 256

// providerStore is the datastore under kad-dht's provider manager (given with
// dht.ProviderDatastore: v0.42.0 takes no custom ProviderStore). It is an
// in-memory map, as kad-dht's default, that refuses a provider record whose
// key is not a sha2-256 multihash (the form of every bag key, the only keys
// Satchel announces) and bounds the records of other peers by ProviderLimits.
// The node's own records are neither counted nor refused.
//
// It indexes records by provider peer, and peers by their number of records,
// to find in constant time the peer to take a record from when full.
type providerStore struct {
	ds.Batching // the records, for reads, queries and everything not overridden
	self        peer.ID
	limits      ProviderLimits
	// cache is the provider manager's read cache (records.Cache), which
	// evict clears of the key it takes a record from, lest the manager
	// still serve the record. The manager touches it, and calls Put, only
	// under its own lock.
	cache lru.LRUCache

	mu      sync.Mutex
	byPeer  map[peer.ID]map[string]struct{} // record keys of each peer
	byCount map[int]map[peer.ID]struct{}    // peers by their record count (> 0)
	total   int                             // records in byPeer
	most    int                             // highest count in byCount, 0 if none
}

func newProviderStore(self peer.ID, l ProviderLimits) *providerStore {
	cache, err := lru.NewLRU(providerCacheKeys, nil)
	if err != nil {
		panic("p2p: provider cache: " + err.Error()) // only for a size < 1
	}
	return &providerStore{
		cache:    cache,
		Batching: dssync.MutexWrap(ds.NewMapDatastore()),
		self:     self,
		limits:   l,
		byPeer:   make(map[peer.ID]map[string]struct{}),
		byCount:  make(map[int]map[peer.ID]struct{}),
	}
}

// records returns the number of other peers' records held.
func (s *providerStore) records() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total
}

// Put stores a record, refreshing one already held, within the limits.
func (s *providerStore) Put(ctx context.Context, key ds.Key, value []byte) error {
	k := key.String()
	if !strings.HasPrefix(k, providerKeyPrefix) {
		return s.Batching.Put(ctx, key, value)
	}
	p, err := parseProviderKey(k)
	if err != nil {
		return err
	}
	if p == s.self {
		return s.Batching.Put(ctx, key, value)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byPeer[p][k]; ok {
		return s.Batching.Put(ctx, key, value)
	}
	n := len(s.byPeer[p])
	if n >= s.limits.PerPeer {
		s.uncache(k)
		return fmt.Errorf("%w: peer %s has %d records, the most one peer may have", ErrProviderRecordRefused, p, n)
	}
	if s.total >= s.limits.Records {
		if s.most <= n+1 {
			s.uncache(k)
			return fmt.Errorf("%w: the node holds %d records and no peer holds more than %s would", ErrProviderRecordRefused, s.total, p)
		}
		if err := s.evict(ctx); err != nil {
			return err
		}
	}
	if err := s.Batching.Put(ctx, key, value); err != nil {
		return err
	}
	s.index(p, k, true)
	return nil
}

// Delete removes a record (kad-dht's expiry) and forgets it.
func (s *providerStore) Delete(ctx context.Context, key ds.Key) error {
	k := key.String()
	p, err := parseProviderKey(k)
	if err != nil || p == s.self {
		return s.Batching.Delete(ctx, key)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Batching.Delete(ctx, key); err != nil {
		return err
	}
	if _, ok := s.byPeer[p][k]; ok {
		s.index(p, k, false)
	}
	return nil
}

// Batch returns a batch that commits through Put and Delete, so a batched
// write is bounded as a single one.
func (s *providerStore) Batch(context.Context) (ds.Batch, error) {
	return ds.NewBasicBatch(s), nil
}

// uncache drops the provider manager's cached set of record k's key. The
// manager adds a provider to that set before it writes the record here,
// so a refused record would otherwise be served from the cache; the set
// is read again from what is held.
func (s *providerStore) uncache(k string) {
	if mhKey, ok := recordKey(k); ok {
		s.cache.Remove(mhKey)
	}
}

// evict removes one record of a peer holding the most. s.mu is held.
func (s *providerStore) evict(ctx context.Context) error {
	for victim := range s.byCount[s.most] {
		for k := range s.byPeer[victim] {
			if err := s.Batching.Delete(ctx, ds.RawKey(k)); err != nil && !errors.Is(err, ds.ErrNotFound) {
				return fmt.Errorf("provider records: evict: %w", err)
			}
			s.index(victim, k, false)
			s.uncache(k)
			return nil
		}
	}
	return nil
}

// index adds (add) or removes record k of peer p. s.mu is held.
func (s *providerStore) index(p peer.ID, k string, add bool) {
	keys := s.byPeer[p]
	old := len(keys)
	if add {
		if keys == nil {
			keys = make(map[string]struct{})
			s.byPeer[p] = keys
		}
		keys[k] = struct{}{}
		s.total++
	} else {
		delete(keys, k)
		s.total--
		if len(keys) == 0 {
			delete(s.byPeer, p)
		}
	}
	s.move(p, old, len(keys))
}

// move moves p from the peers with old records to those with n, which
// differs by one. s.mu is held.
func (s *providerStore) move(p peer.ID, old, n int) {
	if old > 0 {
		delete(s.byCount[old], p)
		if len(s.byCount[old]) == 0 {
			delete(s.byCount, old)
			if s.most == old {
				s.most = n // n = old-1 when it shrank; grown, it is set below
			}
		}
	}
	if n > 0 {
		set := s.byCount[n]
		if set == nil {
			set = make(map[peer.ID]struct{})
			s.byCount[n] = set
		}
		set[p] = struct{}{}
		if n > s.most {
			s.most = n
		}
	}
}

// parseProviderKey returns the provider peer of a record key
// /providers/<base32 key>/<base32 peer ID>, refusing a key that is not a
// sha2-256 multihash (the form of BagKey on the DHT wire).
func parseProviderKey(k string) (peer.ID, error) {
	rest, ok := strings.CutPrefix(k, providerKeyPrefix)
	if !ok {
		return "", fmt.Errorf("%w: key %q is not a provider record's", ErrProviderRecordRefused, k)
	}
	key, pid, ok := strings.Cut(rest, "/")
	if !ok {
		return "", fmt.Errorf("%w: key %q names no provider", ErrProviderRecordRefused, k)
	}
	kb, err := base32.RawStdEncoding.DecodeString(key)
	if err != nil {
		return "", fmt.Errorf("%w: key %q: %v", ErrProviderRecordRefused, k, err)
	}
	if d, err := mh.Decode(kb); err != nil || d.Code != mh.SHA2_256 || d.Length != 32 {
		return "", fmt.Errorf("%w: %d-byte key is not a sha2-256 multihash (a bag key)", ErrProviderRecordRefused, len(kb))
	}
	pb, err := base32.RawStdEncoding.DecodeString(pid)
	if err != nil {
		return "", fmt.Errorf("%w: provider in %q: %v", ErrProviderRecordRefused, k, err)
	}
	return peer.IDFromBytes(pb)
}

// recordKey returns the DHT key (the multihash bytes, as a string: the
// provider manager's cache key) of record key k.
func recordKey(k string) (string, bool) {
	rest, ok := strings.CutPrefix(k, providerKeyPrefix)
	if !ok {
		return "", false
	}
	key, _, _ := strings.Cut(rest, "/")
	kb, err := base32.RawStdEncoding.DecodeString(key)
	return string(kb), err == nil
}
