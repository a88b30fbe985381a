package state

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/cosmos/iavl"
)

// State snapshots, for a node that joins without replaying every block
// (CometBFT state sync). A snapshot is the IAVL export of the committed
// tree (its nodes in post-order) serialised as records — height (1 byte),
// uvarint version, uvarint key length, key, and for leaves uvarint value
// length and value — cut into SnapshotChunkSize chunks. Restoring imports
// the records into an empty tree; its root hash must be the app hash the
// validators signed for that height.

// SnapshotFormat is the version of the snapshot encoding.
const SnapshotFormat = 1

// SnapshotChunkSize is the size of every chunk but the last.
const SnapshotChunkSize = 4 << 20

// ErrBadSnapshot is returned by Restore for a snapshot that does not decode
// or whose state does not hash to the trusted app hash.
var ErrBadSnapshot = errors.New("state snapshot is corrupt or does not match the app hash")

// Snapshot is the state at Height, in chunks.
type Snapshot struct {
	Height int64
	Chunks [][]byte
}

// Hash is sha256 over the chunks' sha256 hashes, in order.
func (s *Snapshot) Hash() []byte {
	h := sha256.New()
	for _, c := range s.Chunks {
		ch := sha256.Sum256(c)
		h.Write(ch[:])
	}
	return h.Sum(nil)
}

// ChunkHashes returns the sha256 of every chunk.
func (s *Snapshot) ChunkHashes() [][]byte {
	out := make([][]byte, len(s.Chunks))
	for i, c := range s.Chunks {
		h := sha256.Sum256(c)
		out[i] = h[:]
	}
	return out
}

// Snapshot exports the last committed state. It reads a saved version, so
// blocks may execute meanwhile.
func (m *Machine) Snapshot() (*Snapshot, error) {
	s := &Snapshot{}
	h, err := m.ExportSnapshot(func(c []byte) error {
		s.Chunks = append(s.Chunks, c)
		return nil
	})
	s.Height = h
	if err != nil {
		return nil, err
	}
	return s, nil
}

// ExportSnapshot exports the last committed state chunk by chunk, handing
// each to emit (which keeps it: the chunk is not reused), and returns the
// state's height. Only one chunk is in memory at a time, so a node can
// write a snapshot of any size to disk. It reads a saved version, so
// blocks may execute meanwhile; an error from emit stops the export.
func (m *Machine) ExportSnapshot(emit func(chunk []byte) error) (int64, error) {
	m.mu.Lock()
	t, height := m.committed, m.height
	m.mu.Unlock()
	if t == nil {
		return 0, errors.New("snapshot: no block is committed yet")
	}
	ex, err := t.Export()
	if err != nil {
		return height, fmt.Errorf("snapshot at height %d: %w", height, err)
	}
	defer ex.Close()
	var cur bytes.Buffer
	var buf [binary.MaxVarintLen64]byte
	chunks := 0
	for {
		n, err := ex.Next()
		if errors.Is(err, iavl.ErrorExportDone) {
			break
		}
		if err != nil {
			return height, fmt.Errorf("snapshot at height %d: %w", height, err)
		}
		cur.WriteByte(byte(n.Height))
		cur.Write(buf[:binary.PutUvarint(buf[:], uint64(n.Version))])
		cur.Write(buf[:binary.PutUvarint(buf[:], uint64(len(n.Key)))])
		cur.Write(n.Key)
		if n.Height == 0 {
			cur.Write(buf[:binary.PutUvarint(buf[:], uint64(len(n.Value)))])
			cur.Write(n.Value)
		}
		if cur.Len() >= SnapshotChunkSize {
			chunk := bytes.Clone(cur.Bytes()[:SnapshotChunkSize])
			rest := bytes.Clone(cur.Bytes()[SnapshotChunkSize:])
			cur.Reset()
			cur.Write(rest)
			if err := emit(chunk); err != nil {
				return height, err
			}
			chunks++
		}
	}
	if cur.Len() > 0 || chunks == 0 {
		if err := emit(bytes.Clone(cur.Bytes())); err != nil {
			return height, err
		}
	}
	return height, nil
}

// Restore replaces an empty machine's state with the snapshot's, checking
// that it hashes to appHash (the app hash the validators signed for
// s.Height). The machine then resumes at s.Height.
func (m *Machine) Restore(s *Snapshot, appHash []byte) error {
	rs := make([]io.Reader, len(s.Chunks))
	for i, c := range s.Chunks {
		rs[i] = bytes.NewReader(c)
	}
	return m.RestoreFrom(s.Height, io.MultiReader(rs...), appHash)
}

// maxSnapshotRecord bounds one record (a key and its value) of a snapshot
// being restored: no value of the state comes near it.
const maxSnapshotRecord = SnapshotChunkSize

// RestoreFrom is Restore from the snapshot's chunks concatenated in r (say,
// chunk files a joining node spooled to disk), read as a stream.
func (m *Machine) RestoreFrom(height int64, r io.Reader, appHash []byte) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	if m.height != 0 || m.committed != nil {
		return fmt.Errorf("restore: the state is already at height %d; restore into an empty data directory", m.height)
	}
	m.tree.Rollback()
	imp, err := m.tree.Import(height)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer func() {
		imp.Close()
		if err != nil {
			// What the import wrote stays out of the way of the next
			// snapshot offered, which imports into an empty tree.
			if rerr := m.resetImport(); rerr != nil {
				err = fmt.Errorf("%w; and the refused snapshot could not be removed (%v): start again from an empty data directory", err, rerr)
			}
		}
	}()
	br := bufio.NewReaderSize(r, 1<<16)
	// The root hash covers leaves' keys and values and inner nodes'
	// heights, sizes and versions, but not inner nodes' keys, which steer
	// lookups: check that each is the first key of its right subtree.
	var firstKeys [][]byte // of the subtrees on the post-order stack
	for {
		if _, err := br.Peek(1); errors.Is(err, io.EOF) {
			break
		}
		n, err := readExportNode(br)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
		if n.Height == 0 {
			firstKeys = append(firstKeys, n.Key)
		} else {
			k := len(firstKeys)
			if k < 2 || !bytes.Equal(n.Key, firstKeys[k-1]) {
				return fmt.Errorf("%w: inner node key %q is not the first key of its right subtree", ErrBadSnapshot, n.Key)
			}
			firstKeys = append(firstKeys[:k-2], firstKeys[k-2])
		}
		if err := imp.Add(n); err != nil {
			return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
		}
	}
	if err := imp.Commit(); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSnapshot, err)
	}
	t, err := m.reads.GetImmutable(height)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if !bytes.Equal(t.Hash(), appHash) {
		return fmt.Errorf("%w: state hashes to %X, the validators signed %X", ErrBadSnapshot, t.Hash(), appHash)
	}
	var p paramsRecord
	if _, err := (store{newCache(treeReader{t: t})}).getJSON(keyParams, &p); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	m.height, m.appHash, m.committed, m.previous, m.genesis, m.pending, m.chainID = height, t.Hash(), t, nil, nil, nil, p.ChainID
	m.log.Info("state restored from a snapshot", "height", height)
	return nil
}

// resetImport deletes what importing a snapshot wrote — its nodes
// keep the versions they had, so every version from 1, the tree having
// been empty — and reopens the trees, empty again; the caller holds m.mu.
func (m *Machine) resetImport() error {
	if err := m.tree.DeleteVersionsFrom(1); err != nil {
		return err
	}
	tree, v, err := newTree(m.db)
	if err != nil {
		return err
	}
	if v != 0 {
		return fmt.Errorf("the state tree is at version %d after removing the import", v)
	}
	m.tree, m.reads = tree, newReadTree(m.db)
	return nil
}

func readExportNode(r *bufio.Reader) (*iavl.ExportNode, error) {
	h, err := r.ReadByte()
	if err != nil {
		return nil, err
	}
	version, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	key, err := readBytes(r)
	if err != nil {
		return nil, err
	}
	n := &iavl.ExportNode{Height: int8(h), Version: int64(version), Key: key}
	if n.Height == 0 {
		if n.Value, err = readBytes(r); err != nil {
			return nil, err
		}
	}
	return n, nil
}

// readBytes reads a uvarint length and that many bytes, checking the
// length against maxSnapshotRecord before allocating.
func readBytes(r *bufio.Reader) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > maxSnapshotRecord {
		return nil, fmt.Errorf("record of %d bytes, above the %d-byte limit", n, maxSnapshotRecord)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("record of %d bytes: %w", n, err)
	}
	return b, nil
}
