package contracts

import (
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
const keyPrefix = "c/"

// OpenStore opens (creating if needed) the contract store in dir.
func OpenStore(dir string) (*Store, error) {
	db, err := leveldb.OpenFile(dir, nil)
	if err != nil {
		return nil, fmt.Errorf("contracts: open store %s: %w; is another process using it?", dir, err)
	}
	return &Store{db: db}, nil
}

// Close closes the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.db.Close()
}

func storeKey(id ID, provider chain.Account) []byte {
	pub, _ := provider.PublicKey()
	k := make([]byte, 0, len(keyPrefix)+len(id)+len(pub))
	k = append(k, keyPrefix...)
	k = append(k, id[:]...)
	return append(k, pub...)
}

// Put verifies c's form and both signatures and writes it, replacing an
// earlier version of the same contract (a renewal). Nothing is written when
// verification fails.
func (s *Store) Put(c *Contract) error {
	if err := c.Verify(); err != nil {
		return fmt.Errorf("contracts: store contract %s: %w", c.ID, err)
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(c.ToPB())
	if err != nil {
		return fmt.Errorf("contracts: store contract %s: %w", c.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.db.Put(storeKey(c.ID, c.Provider), b, nil); err != nil {
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

// Delete removes the contract id with provider; deleting a missing one is
// not an error.
func (s *Store) Delete(id ID, provider chain.Account) error {
	return s.db.Delete(storeKey(id, provider), nil)
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

// decodeStored reads a stored contract and verifies it again: a store edited
// on disk does not hand out a contract nobody signed.
func decodeStored(b []byte) (*Contract, error) {
	var m pb.Contract
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("contracts: stored contract does not decode: %w", err)
	}
	c, err := ContractFromPB(&m)
	if err != nil {
		return nil, fmt.Errorf("contracts: stored contract: %w", err)
	}
	if err := c.Verify(); err != nil {
		return nil, fmt.Errorf("contracts: stored contract %s: %w", c.ID, err)
	}
	return c, nil
}
