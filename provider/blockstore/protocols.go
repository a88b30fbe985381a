package blockstore

import (
	"errors"
	"fmt"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/protocol/store"
)

// ProtocolBlocks is a Store as the wire protocols' handlers use it
// (store.Blocks, fetch.Blocks). The protocols depend on small interfaces of
// their own, not on this storage engine, so the client library that links
// them links no block store; this adapter gives the store's errors the
// meaning the protocols branch on.
type ProtocolBlocks struct{ bs *Store }

// ForProtocols returns s as the protocol handlers use it.
func (s *Store) ForProtocols() ProtocolBlocks { return ProtocolBlocks{s} }

var (
	_ store.Blocks      = ProtocolBlocks{}
	_ fetch.Blocks      = ProtocolBlocks{}
	_ fetch.RangeReader = ProtocolBlocks{}
	_ fetch.Recycler    = ProtocolBlocks{}
)

// Has implements store.Blocks and fetch.Blocks.
func (b ProtocolBlocks) Has(c cid.Cid) (bool, error) { return b.bs.Has(c) }

// Get implements fetch.Blocks: the block checked against its CRC-32C
// (Store.GetFast), since the receiver verifies the CID.
func (b ProtocolBlocks) Get(c cid.Cid) ([]byte, error) {
	data, err := b.bs.GetFast(c)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: %w", fetch.ErrNotFound, err)
	case errors.Is(err, ErrCorrupt):
		return nil, fmt.Errorf("%w: %w", fetch.ErrCorrupt, err)
	}
	return data, err
}

// Recycle implements fetch.Recycler: the handler hands back a block's
// buffer once its reply is written (see Store.Recycle).
func (b ProtocolBlocks) Recycle(data []byte) { b.bs.Recycle(data) }

// ReadRange implements fetch.RangeReader (see Store.ReadRange).
func (b ProtocolBlocks) ReadRange(c cid.Cid, off, n uint64) ([]byte, uint64, error) {
	data, size, err := b.bs.ReadRange(c, off, n)
	if errors.Is(err, ErrNotFound) {
		return nil, 0, fmt.Errorf("%w: %w", fetch.ErrNotFound, err)
	}
	return data, size, err
}

// StoredAt implements store.Blocks.
func (b ProtocolBlocks) StoredAt(c cid.Cid) (time.Time, error) {
	t, err := b.bs.StoredAt(c)
	return t, storeErr(err)
}

// PutInSession implements store.Blocks.
func (b ProtocolBlocks) PutInSession(s store.Session, c cid.Cid, data []byte) error {
	return storeErr(b.bs.PutInSession(Session(s), c, data))
}

// PutVerifiedInSession implements store.VerifiedPutter.
func (b ProtocolBlocks) PutVerifiedInSession(s store.Session, c cid.Cid, data []byte) error {
	return storeErr(b.bs.PutVerifiedInSession(Session(s), c, data))
}

// AddToSession implements store.Blocks.
func (b ProtocolBlocks) AddToSession(s store.Session, c cid.Cid) error {
	return storeErr(b.bs.AddToSession(Session(s), c))
}

// SessionInfo implements store.Blocks.
func (b ProtocolBlocks) SessionInfo(id []byte) (store.Session, uint64, bool, error) {
	s, n, open, err := b.bs.SessionInfo(id)
	return store.Session(s), n, open, err
}

// EndSession implements store.Blocks.
func (b ProtocolBlocks) EndSession(id []byte) error { return b.bs.EndSession(id) }

// PutObject implements store.Blocks.
func (b ProtocolBlocks) PutObject(o store.Object) error {
	m := Manifest{Bag: o.Bag, Object: o.ID, Root: o.Root, Size: o.Size, Chunks: make([]ChunkRef, len(o.Chunks))}
	for i, c := range o.Chunks {
		m.Chunks[i] = ChunkRef(c)
	}
	return storeErr(b.bs.PutManifest(m))
}

// storeErr gives the block store's errors the meaning the store protocol
// branches on.
func storeErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case errors.Is(err, ErrMissingBlocks):
		return fmt.Errorf("%w: %w", store.ErrMissingBlocks, err)
	}
	return err
}
