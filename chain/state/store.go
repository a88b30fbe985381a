package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/iterator"
	"github.com/syndtr/goleveldb/leveldb/opt"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/satchel-net/satchel/chain"
)

// reader is the read side of a store layer.
type reader interface {
	get(key string) ([]byte, bool, error)
	// scan returns the keys and values under prefix in key order.
	scan(prefix string) ([]kv, error)
}

type kv struct {
	key   string
	value []byte
}

// dbReader is what *leveldb.DB and *leveldb.Snapshot share.
type dbReader interface {
	Get(key []byte, ro *opt.ReadOptions) ([]byte, error)
	NewIterator(slice *util.Range, ro *opt.ReadOptions) iterator.Iterator
}

// levelReader reads committed state.
type levelReader struct{ r dbReader }

func (l levelReader) get(key string) ([]byte, bool, error) {
	v, err := l.r.Get([]byte(key), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return v, true, nil
}

func (l levelReader) scan(prefix string) ([]kv, error) {
	it := l.r.NewIterator(util.BytesPrefix([]byte(prefix)), nil)
	defer it.Release()
	var out []kv
	for it.Next() {
		out = append(out, kv{key: string(it.Key()), value: bytes.Clone(it.Value())})
	}
	return out, it.Error()
}

// faultReader records the first error its parent returns. Block execution
// reads through one: a storage fault must stop the node, not become a
// transaction's result code that differs from every other validator's.
type faultReader struct {
	parent reader
	err    error
}

func (f *faultReader) get(key string) ([]byte, bool, error) {
	v, ok, err := f.parent.get(key)
	if err != nil && f.err == nil {
		f.err = err
	}
	return v, ok, err
}

func (f *faultReader) scan(prefix string) ([]kv, error) {
	out, err := f.parent.scan(prefix)
	if err != nil && f.err == nil {
		f.err = err
	}
	return out, err
}

// cache is a write buffer over a parent layer. A nil value in writes is a
// deletion. The block buffer is a cache over the committed DB; each
// transaction runs in a cache over the block buffer and is merged into it
// only when it succeeds.
type cache struct {
	parent reader
	writes map[string][]byte
}

func newCache(parent reader) *cache { return &cache{parent: parent, writes: map[string][]byte{}} }

func (c *cache) get(key string) ([]byte, bool, error) {
	if v, ok := c.writes[key]; ok {
		return v, v != nil, nil
	}
	return c.parent.get(key)
}

func (c *cache) scan(prefix string) ([]kv, error) {
	base, err := c.parent.scan(prefix)
	if err != nil {
		return nil, err
	}
	touched := false
	for k := range c.writes {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			touched = true
			break
		}
	}
	if !touched {
		return base, nil
	}
	m := make(map[string][]byte, len(base))
	for _, e := range base {
		m[e.key] = e.value
	}
	for k, v := range c.writes {
		if len(k) >= len(prefix) && k[:len(prefix)] == prefix {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
	}
	out := make([]kv, 0, len(m))
	for k, v := range m {
		out = append(out, kv{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out, nil
}

func (c *cache) set(key string, v []byte) {
	if v == nil {
		v = []byte{}
	}
	c.writes[key] = v
}

func (c *cache) del(key string) { c.writes[key] = nil }

// mergeInto applies c's writes to its parent cache.
func (c *cache) mergeInto(p *cache) {
	for k, v := range c.writes {
		p.writes[k] = v
	}
}

// sortedKeys returns the written keys in order.
func (c *cache) sortedKeys() []string {
	keys := make([]string, 0, len(c.writes))
	for k := range c.writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// digest hashes the cache's writes: for every written key in byte order,
// uvarint(len(key)) key, then 0x00 for a deletion or 0x01 uvarint(len(value))
// value; the digest is sha256 of the concatenation.
func (c *cache) digest() []byte {
	h := sha256.New()
	var buf [binary.MaxVarintLen64]byte
	for _, k := range c.sortedKeys() {
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(k)))])
		h.Write([]byte(k))
		v := c.writes[k]
		if v == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		h.Write(buf[:binary.PutUvarint(buf[:], uint64(len(v)))])
		h.Write(v)
	}
	return h.Sum(nil)
}

// nextAppHash chains a block's writes onto the previous app hash:
// sha256(prev || digest), or prev unchanged when the block wrote nothing.
func nextAppHash(prev []byte, c *cache) []byte {
	if len(c.writes) == 0 {
		return bytes.Clone(prev)
	}
	h := sha256.New()
	h.Write(prev)
	h.Write(c.digest())
	return h.Sum(nil)
}

// batch turns the cache's writes into a leveldb batch.
func (c *cache) batch() *leveldb.Batch {
	b := new(leveldb.Batch)
	for _, k := range c.sortedKeys() {
		if v := c.writes[k]; v == nil {
			b.Delete([]byte(k))
		} else {
			b.Put([]byte(k), v)
		}
	}
	return b
}

// Typed access.

type store struct{ c *cache }

func (s store) getJSON(key string, v any) (bool, error) {
	b, ok, err := s.c.get(key)
	if err != nil || !ok {
		return ok, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state key %q: %w", key, err)
	}
	return true, nil
}

func (s store) setJSON(key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("state key %q: %w", key, err)
	}
	s.c.set(key, b)
	return nil
}

func (s store) getUint(key string) (uint64, error) {
	b, ok, err := s.c.get(key)
	if err != nil || !ok {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("state key %q: want 8 bytes, have %d", key, len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

func (s store) setUint(key string, n uint64) { s.c.set(key, binary.BigEndian.AppendUint64(nil, n)) }

// nextID returns the counter's value and advances it.
func (s store) nextID(counter string) (uint64, error) {
	n, err := s.getUint(keySeq + counter)
	if err != nil {
		return 0, err
	}
	s.setUint(keySeq+counter, n+1)
	return n, nil
}

// errInternal wraps an unexpected store error.
func errInternal(err error) error {
	var ce *chain.Error
	if errors.As(err, &ce) {
		return err
	}
	return chain.Errorf(chain.ErrInternal, "data directory internal error: %v", err)
}
