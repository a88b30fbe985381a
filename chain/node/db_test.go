package node

import (
	"errors"
	"testing"

	"github.com/cockroachdb/pebble"
	dbm "github.com/cometbft/cometbft-db"
)

// A guarded pebble database is safe to use after Close: reads find nothing,
// writes fail, open iterators end. Unguarded, pebble panics.
func TestGuardedDBAfterClose(t *testing.T) {
	raw, err := dbm.NewPebbleDBWithOpts("test", t.TempDir(), &pebble.Options{Logger: pebbleLogger{discardLogger()}})
	if err != nil {
		t.Fatal(err)
	}
	db := &guardedDB{db: raw}
	for _, k := range []string{"a", "b", "c"} {
		if err := db.Set([]byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := db.Get([]byte("a")); err != nil || string(v) != "va" {
		t.Fatalf("Get = %q, %v", v, err)
	}
	it, err := db.Iterator(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !it.Valid() || string(it.Key()) != "a" {
		t.Fatal("iterator does not start at a")
	}
	batch := db.NewBatch()
	if err := batch.Set([]byte("d"), []byte("vd")); err != nil {
		t.Fatal(err)
	}

	_ = db.Close() // may report the open iterator
	if err := db.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	if v, err := db.Get([]byte("a")); v != nil || err != nil {
		t.Errorf("Get after close = %q, %v; want nothing", v, err)
	}
	if ok, err := db.Has([]byte("a")); ok || err != nil {
		t.Errorf("Has after close = %v, %v", ok, err)
	}
	if err := db.Set([]byte("x"), nil); !errors.Is(err, errDBClosed) {
		t.Errorf("Set after close: %v", err)
	}
	if _, err := db.Iterator(nil, nil); !errors.Is(err, errDBClosed) {
		t.Errorf("Iterator after close: %v", err)
	}
	it.Next()
	if it.Valid() || it.Key() != nil || !errors.Is(it.Error(), errDBClosed) {
		t.Error("iterator still live after close")
	}
	if err := it.Close(); err != nil {
		t.Errorf("iterator Close after close: %v", err)
	}
	if err := batch.Write(); !errors.Is(err, errDBClosed) {
		t.Errorf("batch Write after close: %v", err)
	}
	batch.Close()
	if err := db.NewBatch().Write(); !errors.Is(err, errDBClosed) {
		t.Errorf("new batch Write after close: %v", err)
	}
}
