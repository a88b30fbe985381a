package state

import (
	"sort"
	"strings"
)

// iterator is a reader that can walk the entries under a prefix in key
// order one at a time, without holding them all: the migration of a state
// of millions of records (indexObjectIDs) reads through one. fn may keep
// a value but not change it (a cache passes its own, as scan does); an
// error from fn stops the walk and is returned.
type iterator interface {
	iterate(prefix string, fn func(key string, value []byte) error) error
}

// iterateReader walks r's entries under prefix in key order: one at a time
// when r is an iterator, else from r.scan.
func iterateReader(r reader, prefix string, fn func(key string, value []byte) error) error {
	if it, ok := r.(iterator); ok {
		return it.iterate(prefix, fn)
	}
	all, err := r.scan(prefix)
	if err != nil {
		return err
	}
	for _, e := range all {
		if err := fn(e.key, e.value); err != nil {
			return err
		}
	}
	return nil
}

// iterate walks the entries under prefix of the parent merged with c's own
// writes, in key order, as scan returns them: a write replaces the
// parent's value, a deletion hides it, a write of a key the parent lacks
// is added. Only c's writes under prefix are held (sorted, before the
// walk), so fn may write to c, but not under prefix.
func (c *cache) iterate(prefix string, fn func(key string, value []byte) error) error {
	var own []kv
	for k, v := range c.writes {
		if strings.HasPrefix(k, prefix) {
			own = append(own, kv{k, v})
		}
	}
	sort.Slice(own, func(i, j int) bool { return own[i].key < own[j].key })
	// emitOwn passes on c's writes from the i-th on while below says so,
	// skipping deletions.
	i := 0
	emitOwn := func(below func(string) bool) error {
		for ; i < len(own) && below(own[i].key); i++ {
			if own[i].value != nil {
				if err := fn(own[i].key, own[i].value); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err := iterateReader(c.parent, prefix, func(k string, v []byte) error {
		if err := emitOwn(func(o string) bool { return o < k }); err != nil {
			return err
		}
		if i < len(own) && own[i].key == k {
			w := own[i].value
			i++
			if w == nil {
				return nil // deleted in c
			}
			return fn(k, w)
		}
		return fn(k, v)
	})
	if err != nil {
		return err
	}
	return emitOwn(func(string) bool { return true })
}

// iterate passes on the parent's walk, recording its first storage error
// (not fn's: those are the caller's own).
func (f *faultReader) iterate(prefix string, fn func(key string, value []byte) error) error {
	var fnErr error
	err := iterateReader(f.parent, prefix, func(k string, v []byte) error {
		if err := fn(k, v); err != nil {
			fnErr = err
			return err
		}
		return nil
	})
	if err != nil && fnErr == nil && f.err == nil {
		f.err = err
	}
	return err
}

// iterate walks the saved version's entries under prefix (treeReader.walk).
func (r treeReader) iterate(prefix string, fn func(key string, value []byte) error) error {
	return r.walk([]byte(prefix), prefixEnd([]byte(prefix)), fn)
}

func (emptyReader) iterate(string, func(string, []byte) error) error { return nil }
