package blockstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/protocol/audit"
)

// AuditBlocks is a Store as the audit handler uses it (audit.Objects and
// audit.Blocks): objects by their manifests, blocks verified on every read,
// with the store's errors given the meaning the audit protocol branches on.
type AuditBlocks struct{ bs *Store }

// ForAudit returns s as the audit handler uses it.
func (s *Store) ForAudit() AuditBlocks { return AuditBlocks{s} }

var (
	_ audit.Objects = AuditBlocks{}
	_ audit.Blocks  = AuditBlocks{}
)

// Object implements audit.Objects: the root and chunk list of a recorded
// manifest of bag.
func (a AuditBlocks) Object(_ context.Context, bag string, id uint64) (cid.Cid, []cid.Cid, error) {
	m, ok, err := a.bs.Manifest(id)
	if err != nil {
		return cid.Undef, nil, err
	}
	if !ok || m.Bag != bag {
		return cid.Undef, nil, fmt.Errorf("%w: object %d of bag %s", audit.ErrNotFound, id, bag)
	}
	chunks := make([]cid.Cid, len(m.Chunks))
	for i, c := range m.Chunks {
		chunks[i] = c.CID
	}
	return m.Root, chunks, nil
}

// Get implements audit.Blocks.
func (a AuditBlocks) Get(c cid.Cid) ([]byte, error) {
	data, err := a.bs.Get(c)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("%w: %w", audit.ErrNotFound, err)
	case errors.Is(err, ErrCorrupt):
		return nil, fmt.Errorf("%w: %w", audit.ErrCorruptBlock, err)
	}
	return data, err
}
