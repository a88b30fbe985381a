package node

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/cockroachdb/pebble"
	dbm "github.com/cometbft/cometbft-db"
	cmtcfg "github.com/cometbft/cometbft/config"
)

// dbProvider opens CometBFT's databases (block store, state, evidence) with
// pebble, CometBFT's default backend, logging through slog instead of
// pebble's default logger (which writes to stderr), and guarded for use
// after close (see guardedDB).
func dbProvider(log *slog.Logger) cmtcfg.DBProvider {
	pl := pebbleLogger{log.With("component", "pebble")}
	return func(ctx *cmtcfg.DBContext) (dbm.DB, error) {
		db, err := dbm.NewPebbleDBWithOpts(ctx.ID, ctx.Config.DBDir(), &pebble.Options{Logger: pl})
		if err != nil {
			return nil, err
		}
		return &guardedDB{db: db}, nil
	}
}

// pebbleLogger adapts slog to pebble's logger: its routine messages (WAL
// replay, compactions) at Debug, its errors at Warn.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Warn(fmt.Sprintf(format, args...)) }

// Fatalf logs and panics: pebble does not expect it to return.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error(msg)
	panic("pebble: " + msg)
}

// errDBClosed is what a guarded database returns for writes after Close.
var errDBClosed = errors.New("chain node database is closed")

// guardedDB makes a database safe to use after Close. CometBFT v1.0.1 closes
// its block store while per-peer consensus goroutines may still read it
// (queryMaj23Routine sleeps, then loads a commit without checking that the
// node still runs), and pebble panics on a closed database, taking the
// process down with a stopping node. After Close, reads find nothing, writes
// and new iterators fail with errDBClosed, and open iterators end; Close
// waits for operations in flight.
type guardedDB struct {
	mu     sync.RWMutex
	db     dbm.DB
	closed bool
}

var _ dbm.DB = (*guardedDB)(nil)

// open runs f under the read lock unless the database is closed.
func (g *guardedDB) open(f func()) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	if g.closed {
		return false
	}
	f()
	return true
}

func (g *guardedDB) Get(key []byte) (v []byte, err error) {
	g.open(func() { v, err = g.db.Get(key) })
	return v, err
}

func (g *guardedDB) Has(key []byte) (ok bool, err error) {
	g.open(func() { ok, err = g.db.Has(key) })
	return ok, err
}

func (g *guardedDB) write(f func() error) error {
	err := errDBClosed
	g.open(func() { err = f() })
	return err
}

func (g *guardedDB) Set(key, value []byte) error {
	return g.write(func() error { return g.db.Set(key, value) })
}

func (g *guardedDB) SetSync(key, value []byte) error {
	return g.write(func() error { return g.db.SetSync(key, value) })
}

func (g *guardedDB) Delete(key []byte) error {
	return g.write(func() error { return g.db.Delete(key) })
}

func (g *guardedDB) DeleteSync(key []byte) error {
	return g.write(func() error { return g.db.DeleteSync(key) })
}

func (g *guardedDB) Iterator(start, end []byte) (dbm.Iterator, error) {
	return g.iterator(func() (dbm.Iterator, error) { return g.db.Iterator(start, end) })
}

func (g *guardedDB) ReverseIterator(start, end []byte) (dbm.Iterator, error) {
	return g.iterator(func() (dbm.Iterator, error) { return g.db.ReverseIterator(start, end) })
}

func (g *guardedDB) iterator(f func() (dbm.Iterator, error)) (dbm.Iterator, error) {
	var it dbm.Iterator
	err := g.write(func() (err error) {
		it, err = f()
		return err
	})
	if err != nil {
		return nil, err
	}
	return &guardedIterator{g: g, it: it}, nil
}

func (g *guardedDB) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	g.closed = true
	return g.db.Close()
}

func (g *guardedDB) NewBatch() dbm.Batch {
	var b dbm.Batch
	if !g.open(func() { b = g.db.NewBatch() }) {
		return closedBatch{}
	}
	return &guardedBatch{g: g, b: b}
}

func (g *guardedDB) Print() error { return g.write(g.db.Print) }

func (g *guardedDB) Stats() (s map[string]string) {
	g.open(func() { s = g.db.Stats() })
	return s
}

func (g *guardedDB) Compact(start, end []byte) error {
	return g.write(func() error { return g.db.Compact(start, end) })
}

// guardedBatch writes only while its database is open.
type guardedBatch struct {
	g *guardedDB
	b dbm.Batch
}

func (b *guardedBatch) Set(key, value []byte) error { return b.b.Set(key, value) }
func (b *guardedBatch) Delete(key []byte) error     { return b.b.Delete(key) }
func (b *guardedBatch) Write() error                { return b.g.write(b.b.Write) }
func (b *guardedBatch) WriteSync() error            { return b.g.write(b.b.WriteSync) }
func (b *guardedBatch) Close() error                { return b.b.Close() }

// closedBatch is a batch of a closed database.
type closedBatch struct{}

func (closedBatch) Set([]byte, []byte) error { return errDBClosed }
func (closedBatch) Delete([]byte) error      { return errDBClosed }
func (closedBatch) Write() error             { return errDBClosed }
func (closedBatch) WriteSync() error         { return errDBClosed }
func (closedBatch) Close() error             { return nil }

// guardedIterator ends when its database closes.
type guardedIterator struct {
	g  *guardedDB
	it dbm.Iterator
}

func (i *guardedIterator) Domain() ([]byte, []byte) { return i.it.Domain() }

func (i *guardedIterator) Valid() (ok bool) {
	i.g.open(func() { ok = i.it.Valid() })
	return ok
}

func (i *guardedIterator) Next() { i.g.open(i.it.Next) }

func (i *guardedIterator) Key() (k []byte) {
	i.g.open(func() { k = i.it.Key() })
	return k
}

func (i *guardedIterator) Value() (v []byte) {
	i.g.open(func() { v = i.it.Value() })
	return v
}

func (i *guardedIterator) Error() error {
	return i.g.write(i.it.Error)
}

func (i *guardedIterator) Close() error {
	err := error(nil)
	i.g.open(func() { err = i.it.Close() })
	return err
}
