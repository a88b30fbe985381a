package contracts

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"

	"github.com/satchel-net/satchel/chain"
)

// This file keeps two things beside the contracts: the open uploads (a
// contract consigned for an upload whose session is not bound yet), which
// the store forgets with their contract once their deadline passes, and an
// index of every contract by the time it may be deleted, so pruning reads
// only what is due instead of every contract.
//
//	"u/" id provider  → session (16) || deadline (8, Unix seconds)   an open upload
//	"s/" session      → id (16) || provider (32)                     its session
//	"e/" due (8) id provider → ""   due: the open upload's deadline, or end + EndedRetention
//	"m/index"         → ""          the index was built (stores written before it lack one)
//
// Times are kept in whole seconds rounded up (unixCeil), never before the
// instant they stand for: a contract is listed due, and pruned, only once
// its deadline passed.
const (
	openPrefix    = "u/"
	sessionPrefix = "s/"
	duePrefix     = "e/"
	indexMarker   = "m/index"
)

// DueContract names a contract the index says may be deleted.
type DueContract struct {
	ID       ID
	Provider chain.Account
}

// dueKey is the index key of contract id with provider due at t.
func dueKey(t time.Time, id ID, provider chain.Account) []byte {
	k := binary.BigEndian.AppendUint64([]byte(duePrefix), unixCeil(t))
	return append(k, prefixedKey("", id, provider)...)
}

// unixCeil is t in Unix seconds, rounded up (0 before 1970).
func unixCeil(t time.Time) uint64 {
	s := t.Unix()
	if t.Nanosecond() > 0 {
		s++
	}
	return uint64(max(s, 0))
}

// openInfo is an open upload's marker.
type openInfo struct {
	session  [16]byte
	deadline time.Time
}

func (o openInfo) bytes() []byte {
	return binary.BigEndian.AppendUint64(append([]byte(nil), o.session[:]...), unixCeil(o.deadline))
}

// openLocked reads the open marker of id with provider. Call with s.mu.
func (s *Store) openLocked(id ID, provider chain.Account) (openInfo, bool, error) {
	b, err := s.db.Get(prefixedKey(openPrefix, id, provider), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return openInfo{}, false, nil
	}
	if err != nil {
		return openInfo{}, false, fmt.Errorf("contracts: read the open upload of contract %s: %w", id, err)
	}
	if len(b) != 24 {
		return openInfo{}, false, fmt.Errorf("contracts: the open upload of contract %s holds %d bytes, want 24", id, len(b))
	}
	return openInfo{session: [16]byte(b[:16]), deadline: time.Unix(int64(binary.BigEndian.Uint64(b[16:])), 0)}, true, nil
}

// dueLocked is when the stored contract id with provider may be deleted,
// and whether it is stored. Call with s.mu.
func (s *Store) dueLocked(id ID, provider chain.Account) (time.Time, bool, error) {
	if o, ok, err := s.openLocked(id, provider); err != nil || ok {
		return o.deadline, ok, err
	}
	b, err := s.db.Get(storeKey(id, provider), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("contracts: read contract %s: %w", id, err)
	}
	c, err := decodeUnverified(b)
	if err != nil {
		return time.Time{}, false, err
	}
	return c.End.Add(EndedRetention), true, nil
}

// PutOpen stores c, consigned for an upload under session, as an open
// upload: it is deleted with its contract once deadline passes (Due lists
// it then), unless its session is bound first (Settle).
func (s *Store) PutOpen(c *Contract, session [16]byte, deadline time.Time) error {
	return s.put(c, &openInfo{session: session, deadline: deadline})
}

// ExtendOpen moves the deadline of contract id's open upload with provider
// to deadline, if later; a contract not open is left as it is.
func (s *Store) ExtendOpen(id ID, provider chain.Account, deadline time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok, err := s.openLocked(id, provider)
	if err != nil || !ok || !deadline.After(o.deadline) {
		return err
	}
	var b leveldb.Batch
	b.Delete(dueKey(o.deadline, id, provider))
	o.deadline = deadline
	b.Put(prefixedKey(openPrefix, id, provider), o.bytes())
	b.Put(dueKey(deadline, id, provider), nil)
	return s.db.Write(&b, nil)
}

// Settle records that the open upload under session was bound to data
// object obj: its contract is kept until its end, plus EndedRetention, and
// the object is recorded (Bound). It returns the contract's ID, and false
// when no open upload has that session.
func (s *Store) Settle(session [16]byte, obj chain.ObjectID) (ID, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, err := s.db.Get(append([]byte(sessionPrefix), session[:]...), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return ID{}, false, nil
	}
	if err != nil {
		return ID{}, false, fmt.Errorf("contracts: read upload session: %w", err)
	}
	if len(v) != 16+ed25519.PublicKeySize {
		return ID{}, false, fmt.Errorf("contracts: upload session record holds %d bytes, want %d", len(v), 16+ed25519.PublicKeySize)
	}
	id, provider := ID(v[:16]), chain.AccountFromPublicKey(ed25519.PublicKey(v[16:]))
	o, ok, err := s.openLocked(id, provider)
	if err != nil {
		return id, false, err
	}
	b, err := s.db.Get(storeKey(id, provider), nil)
	if err != nil {
		return id, false, fmt.Errorf("contracts: settle contract %s: %w", id, err)
	}
	c, err := decodeUnverified(b)
	if err != nil {
		return id, false, err
	}
	var batch leveldb.Batch
	if ok {
		batch.Delete(dueKey(o.deadline, id, provider))
		batch.Delete(prefixedKey(openPrefix, id, provider))
	}
	batch.Delete(append([]byte(sessionPrefix), session[:]...))
	batch.Put(dueKey(c.End.Add(EndedRetention), id, provider), nil)
	batch.Put(prefixedKey(boundPrefix, id, provider), binary.AppendUvarint(nil, uint64(obj)))
	return id, true, s.db.Write(&batch, nil)
}

// Open reports whether contract id with provider is an open upload, and
// its deadline.
func (s *Store) Open(id ID, provider chain.Account) (time.Time, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	o, ok, err := s.openLocked(id, provider)
	return o.deadline, ok, err
}

// Due lists up to limit contracts the index says may be deleted at now:
// open uploads past their deadline, contracts ended EndedRetention before.
// It reads only those entries.
func (s *Store) Due(now time.Time, limit int) ([]DueContract, error) {
	end := binary.BigEndian.AppendUint64([]byte(duePrefix), uint64(max(now.Unix(), 0))+1)
	it := s.db.NewIterator(&util.Range{Start: []byte(duePrefix), Limit: end}, nil)
	defer it.Release()
	var out []DueContract
	for len(out) < limit && it.Next() {
		k := it.Key()[len(duePrefix)+8:]
		if len(k) != 16+ed25519.PublicKeySize {
			continue
		}
		out = append(out, DueContract{ID: ID(k[:16]), Provider: chain.AccountFromPublicKey(ed25519.PublicKey(bytes.Clone(k[16:])))})
	}
	return out, it.Error()
}

// buildIndex writes the due index of a store written before it had one.
func (s *Store) buildIndex() error {
	if ok, err := s.db.Has([]byte(indexMarker), nil); err != nil || ok {
		return err
	}
	it := s.db.NewIterator(util.BytesPrefix([]byte(keyPrefix)), nil)
	defer it.Release()
	var b leveldb.Batch
	for it.Next() {
		c, err := decodeUnverified(it.Value())
		if err != nil {
			return err
		}
		b.Put(dueKey(c.End.Add(EndedRetention), c.ID, c.Provider), nil)
	}
	if err := it.Error(); err != nil {
		return err
	}
	b.Put([]byte(indexMarker), nil)
	return s.db.Write(&b, nil)
}
