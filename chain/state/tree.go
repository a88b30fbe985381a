package state

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/cosmos/iavl"
	iavldb "github.com/cosmos/iavl/db"
)

// treeCacheSize is how many IAVL nodes each of the machine's two trees
// (writer and reader) keeps in memory. A node is about 200 bytes plus its
// key and value; 100,000 nodes keep the upper levels of a tree of millions
// of keys hot for a few tens of MiB.
const treeCacheSize = 100_000

// newReadTree opens a second handle on db for reading saved versions. It
// has its own node cache: the writing tree clears child pointers of cached
// nodes as it copies them, so readers sharing its nodes would race with
// block execution.
func newReadTree(db iavldb.DB) *iavl.MutableTree {
	return iavl.NewMutableTree(db, treeCacheSize, true, iavl.NewNopLogger())
}

// newTree opens the IAVL tree on db at its latest saved version. Fast
// storage (IAVL's unversioned index of the live state) is skipped: it is
// shared by every version, so a read of a committed version racing a commit
// could see the next version's value; reads walk the versioned tree instead,
// which every proof walks anyway.
func newTree(db iavldb.DB) (*iavl.MutableTree, int64, error) {
	t := iavl.NewMutableTree(db, treeCacheSize, true, iavl.NewNopLogger(), iavl.SyncOption(true))
	v, err := t.Load()
	if err != nil {
		return nil, 0, fmt.Errorf("load the state tree: %w", err)
	}
	return t, v, nil
}

// emptyValue stands for an empty value in the tree: ICS23 proofs need a
// value, and no stored value is a single zero byte (values are JSON or
// fixed-size integers).
var emptyValue = []byte{0}

// encodeValue is v as stored in the tree.
func encodeValue(v []byte) []byte {
	if len(v) == 0 {
		return emptyValue
	}
	return v
}

// decodeValue is the value stored in the tree as v.
func decodeValue(v []byte) []byte {
	if bytes.Equal(v, emptyValue) {
		return []byte{}
	}
	return bytes.Clone(v)
}

// treeReader reads one saved version of the tree. An ImmutableTree of a
// saved version is safe for concurrent use while later versions are
// written (no version is ever deleted). A raw reader returns values as
// stored (as proofs cover them).
type treeReader struct {
	t   *iavl.ImmutableTree
	raw bool
}

func (r treeReader) value(v []byte) []byte {
	if r.raw {
		return bytes.Clone(v)
	}
	return decodeValue(v)
}

func (r treeReader) get(key string) ([]byte, bool, error) {
	v, err := r.t.Get([]byte(key))
	if err != nil || v == nil {
		return nil, false, err
	}
	return r.value(v), true, nil
}

func (r treeReader) scan(prefix string) ([]kv, error) {
	out, _, err := r.scanPage(prefix, "", 0)
	return out, err
}

// scanPage returns up to limit (0: all) entries under prefix whose keys are
// above after (when after is not empty), in key order, and whether more
// follow.
func (r treeReader) scanPage(prefix, after string, limit int) ([]kv, bool, error) {
	start := []byte(prefix)
	if after != "" {
		start = append([]byte(after), 0)
	}
	var out []kv
	more := false
	err := r.walk(start, prefixEnd([]byte(prefix)), func(k string, v []byte) error {
		if limit > 0 && len(out) == limit {
			more = true
			return errPageFull
		}
		out = append(out, kv{key: k, value: v})
		return nil
	})
	if err == errPageFull {
		err = nil
	}
	return out, more, err
}

// errPageFull stops scanPage's walk once its page is full.
var errPageFull = errors.New("page full")

// walk passes fn the saved version's entries from start up to end (nil:
// the last) in key order, through an IAVL iterator, which holds a path of
// the tree, not the entries; an error from fn stops it and is returned.
func (r treeReader) walk(start, end []byte, fn func(key string, value []byte) error) error {
	it, err := r.t.Iterator(start, end, true)
	if err != nil {
		return err
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		if err := fn(string(it.Key()), r.value(it.Value())); err != nil {
			return err
		}
	}
	return it.Error()
}

// prefixEnd is the first key above every key starting with p (nil: none).
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// emptyReader is the state before genesis.
type emptyReader struct{}

func (emptyReader) get(string) ([]byte, bool, error) { return nil, false, nil }
func (emptyReader) scan(string) ([]kv, error)        { return nil, nil }
func (emptyReader) scanPage(string, string, int) ([]kv, bool, error) {
	return nil, false, nil
}

// applyTo writes the cache's writes into the tree's working version.
func (c *cache) applyTo(t *iavl.MutableTree) error {
	for _, k := range c.sortedKeys() {
		v := c.writes[k]
		var err error
		if v == nil {
			_, _, err = t.Remove([]byte(k))
		} else {
			_, err = t.Set([]byte(k), encodeValue(v))
		}
		if err != nil {
			return fmt.Errorf("state key %q: %w", k, err)
		}
	}
	return nil
}
