package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/satchel-net/satchel/chain"
)

// reader is the read side of a store layer.
type reader interface {
	get(key string) ([]byte, bool, error)
	// scan returns the keys and values under prefix in key order.
	scan(prefix string) ([]kv, error)
	// scanPage returns up to limit (0: all) entries under prefix with keys
	// above after (unless after is empty), in key order, and whether more
	// follow.
	scanPage(prefix, after string, limit int) ([]kv, bool, error)
}

type kv struct {
	key   string
	value []byte
}

// cutPage cuts a page out of entries in key order.
func cutPage(all []kv, after string, limit int) ([]kv, bool) {
	i := 0
	if after != "" {
		i = sort.Search(len(all), func(i int) bool { return all[i].key > after })
	}
	all = all[i:]
	if limit > 0 && len(all) > limit {
		return all[:limit], true
	}
	return all, false
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

func (f *faultReader) scanPage(prefix, after string, limit int) ([]kv, bool, error) {
	out, more, err := f.parent.scanPage(prefix, after, limit)
	if err != nil && f.err == nil {
		f.err = err
	}
	return out, more, err
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

func (c *cache) scanPage(prefix, after string, limit int) ([]kv, bool, error) {
	all, err := c.scan(prefix)
	if err != nil {
		return nil, false, err
	}
	out, more := cutPage(all, after, limit)
	return out, more, nil
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
