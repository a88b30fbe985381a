package contracts

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/syndtr/goleveldb/leveldb"
	"github.com/syndtr/goleveldb/leveldb/util"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
)

// Store keeps complete contracts in goleveldb, so they survive restarts.
// Renters and providers each keep their own. A contract is keyed by its ID
// and its provider account, so a renter holds the N contracts of one
// proposal and a provider the one it took. Every contract is verified
// (both signatures) before it is written. Store is safe for concurrent use.
type Store struct {
	mu sync.Mutex
	db *leveldb.DB
}

// keyPrefix starts every contract key: "c/" || id (16) || provider public key (32).
// boundPrefix starts the key of the object a contract's upload was bound to,
// with the same suffix: a contract is signed before its object exists
// (Object 0), so the object is kept beside it.
const (
	keyPrefix   = "c/"
	boundPrefix = "o/"
)

// OpenStore opens (creating if needed) the contract store in dir.
func OpenStore(dir string) (*Store, error) {
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("contracts: open store %s: %w; is another process using it?", dir, err)
	}
	s := &Store{db: db}
	if err := s.buildIndex(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("contracts: index store %s: %w", dir, err)
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Close()
}

func storeKey(id ID, provider chain.Account) []byte { return prefixedKey(keyPrefix, id, provider) }

func prefixedKey(prefix string, id ID, provider chain.Account) []byte {
	pub, _ := provider.PublicKey()
	k := make([]byte, 0, len(prefix)+len(id)+len(pub))
	k = append(k, prefix...)
	k = append(k, id[:]...)
	return append(k, pub...)
}

// Put verifies c's form and both signatures and writes it, replacing an
// earlier version of the same contract (a renewal), which keeps its open
// upload if it has one (see PutOpen). Nothing is written when
// verification fails.
func (s *Store) Put(c *Contract) error { return s.put(c, nil) }

// put writes c; open, when set, makes it an open upload (PutOpen).
func (s *Store) put(c *Contract, open *openInfo) error {
	if err := c.Verify(); err != nil {
		return fmt.Errorf("contracts: store contract %s: %w", c.ID, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.ToPB())
	if err != nil {
		return fmt.Errorf("contracts: store contract %s: %w", c.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var batch leveldb.Batch
	due := c.End.Add(EndedRetention)
	old, held, err := s.dueLocked(c.ID, c.Provider)
	if err != nil {
		return fmt.Errorf("contracts: store contract %s: %w", c.ID, err)
	}
	if held {
		batch.Delete(dueKey(old, c.ID, c.Provider))
	}
	prev, wasOpen, err := s.openLocked(c.ID, c.Provider)
	if err != nil {
		return err
	}
	switch {
	case open != nil:
		if wasOpen {
			batch.Delete(append([]byte(sessionPrefix), prev.session[:]...))
		}
		pub, _ := c.Provider.PublicKey()
		batch.Put(prefixedKey(openPrefix, c.ID, c.Provider), open.bytes())
		batch.Put(append([]byte(sessionPrefix), open.session[:]...), append(c.ID[:len(c.ID):len(c.ID)], pub...))
		due = open.deadline
	case wasOpen:
		due = prev.deadline
	}
	batch.Put(storeKey(c.ID, c.Provider), b)
	batch.Put(dueKey(due, c.ID, c.Provider), nil)
	if err := s.db.Write(&batch, nil); err != nil {
		return fmt.Errorf("contracts: store contract %s: %w", c.ID, err)
	}
	return nil
}

// Get returns the contract id with provider, or an error wrapping
// ErrNotFound.
func (s *Store) Get(id ID, provider chain.Account) (*Contract, error) {
	b, err := s.db.Get(storeKey(id, provider), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return nil, fmt.Errorf("%w: contract %s with provider %s", ErrNotFound, id, provider)
	}
	if err != nil {
		return nil, fmt.Errorf("contracts: read contract %s: %w", id, err)
	}
	return decodeStored(b)
}

// ByID returns every contract with id (one per provider), in provider order.
func (s *Store) ByID(id ID) ([]*Contract, error) {
	return s.scan(append([]byte(keyPrefix), id[:]...))
}

// List returns every stored contract, ordered by ID then provider.
func (s *Store) List() ([]*Contract, error) { return s.scan([]byte(keyPrefix)) }

// Delete removes the contract id with provider, the object it was bound
// to, its open upload and its index entry; deleting a missing one is not
// an error.
func (s *Store) Delete(id ID, provider chain.Account) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b leveldb.Batch
	if due, ok, err := s.dueLocked(id, provider); err != nil {
		return err
	} else if ok {
		b.Delete(dueKey(due, id, provider))
	}
	if o, ok, err := s.openLocked(id, provider); err != nil {
		return err
	} else if ok {
		b.Delete(append([]byte(sessionPrefix), o.session[:]...))
	}
	b.Delete(storeKey(id, provider))
	b.Delete(prefixedKey(boundPrefix, id, provider))
	b.Delete(prefixedKey(openPrefix, id, provider))
	return s.db.Write(&b, nil)
}

// SetBound records that the upload under the stored contract id with
// provider was bound to data object obj (registered on chain and held by
// the provider): a contract for an upload names no object when signed.
// The contract must be stored (an error wrapping ErrNotFound otherwise).
func (s *Store) SetBound(id ID, provider chain.Account, obj chain.ObjectID) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, err := s.db.Has(storeKey(id, provider), nil); err != nil || !ok {
		if err == nil {
			err = fmt.Errorf("%w: contract %s with provider %s", ErrNotFound, id, provider)
		}
		return fmt.Errorf("contracts: bind contract %s: %w", id, err)
	}
	if err := s.db.Put(prefixedKey(boundPrefix, id, provider), binary.AppendUvarint(nil, uint64(obj)), nil); err != nil {
		return fmt.Errorf("contracts: bind contract %s: %w", id, err)
	}
	return nil
}

// Bound returns the data object the upload under contract id with provider
// was bound to (SetBound); false when none was recorded: the contract names
// its object itself, or its upload never completed.
func (s *Store) Bound(id ID, provider chain.Account) (chain.ObjectID, bool, error) {
	b, err := s.db.Get(prefixedKey(boundPrefix, id, provider), nil)
	if errors.Is(err, leveldb.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("contracts: read the object of contract %s: %w", id, err)
	}
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) {
		return 0, false, fmt.Errorf("contracts: the object recorded for contract %s does not decode", id)
	}
	return chain.ObjectID(v), true, nil
}

func (s *Store) scan(prefix []byte) ([]*Contract, error) {
	it := s.db.NewIterator(util.BytesPrefix(prefix), nil)
	defer it.Release()
	var out []*Contract
	for it.Next() {
		c, err := decodeStored(slices.Clone(it.Value()))
		if err != nil {
			return out, err
		}
		out = append(out, c)
	}
	return out, it.Error()
}

// decodeUnverified reads a stored contract's fields without checking its
// signatures: for the store's own bookkeeping (its dates), never handed out.
func decodeUnverified(b []byte) (*Contract, error) {
	var m pb.Contract
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("contracts: stored contract does not decode: %w", err)
	}
	c, err := ContractFromPB(&m)
	if err != nil {
		return nil, fmt.Errorf("contracts: stored contract: %w", err)
	}
	return c, nil
}

// decodeStored reads a stored contract and verifies it again: a store edited
// on disk does not hand out a contract nobody signed.
func decodeStored(b []byte) (*Contract, error) {
	c, err := decodeUnverified(b)
	if err != nil {
		return nil, err
	}
	if err := c.Verify(); err != nil {
		return nil, fmt.Errorf("contracts: stored contract %s: %w", c.ID, err)
	}
	return c, nil
}
