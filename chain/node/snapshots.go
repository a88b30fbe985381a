package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/satchel-net/satchel/chain/state"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// snapshotter is a machine that can export and restore its state (the
// default machine of chain/state can).
type snapshotter interface {
	ExportSnapshot(emit func(chunk []byte) error) (int64, error)
	RestoreFrom(height int64, r io.Reader, appHash []byte) error
}

// keepSnapshots is how many snapshots a node keeps: a peer that chose one
// fetches its chunks a while later.
const keepSnapshots = 4

// snapshots serves state sync: the node keeps the snapshots of the last
// keepSnapshots heights divisible by its interval on disk (see
// snapshotStore) for peers that join, and a joining node restores one
// offered by a peer. Chunks are checked against the hashes in the
// snapshot's metadata as they arrive; the restored state against the app
// hash CometBFT's light client verified.
type snapshots struct {
	interval int64
	store    *snapshotStore // nil: none kept (an App without a node home)
	wg       sync.WaitGroup

	mu      sync.Mutex
	taking  bool
	offered *abci.Snapshot
	appHash []byte
	// The offered snapshot's chunks are spooled to disk (spool, one file
	// per chunk) as they arrive; left counts those still missing.
	spool    string
	received []bool
	left     int
}

// maxSnapshotChunks bounds the chunks of a snapshot a node accepts to
// restore (64 GiB of state), so a peer cannot make it spool without end.
const maxSnapshotChunks = 1 << 14

// maybeTake starts writing a snapshot after a commit at height to disk, in
// the background, unless one is being written or it is kept already.
func (s *snapshots) maybeTake(m snapshotter, height int64, log interface{ Warn(string, ...any) }) {
	if s.interval <= 0 || height%s.interval != 0 || s.store == nil || s.store.has(height) {
		return
	}
	s.mu.Lock()
	if s.taking {
		s.mu.Unlock()
		return
	}
	s.taking = true
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.store.write(m)
		s.mu.Lock()
		s.taking = false
		s.mu.Unlock()
		if err != nil {
			log.Warn("state snapshot failed", "height", height, "err", err)
		}
	}()
}

// ListSnapshots offers the kept snapshots.
func (a *App) ListSnapshots(context.Context, *abci.ListSnapshotsRequest) (*abci.ListSnapshotsResponse, error) {
	res := &abci.ListSnapshotsResponse{}
	if a.snaps.store == nil {
		return res, nil
	}
	for _, m := range a.snaps.store.list() {
		res.Snapshots = append(res.Snapshots, &abci.Snapshot{
			Height: uint64(m.Height), Format: state.SnapshotFormat, Chunks: uint32(len(m.ChunkHashes)),
			Hash: m.hash(), Metadata: bytes.Join(m.ChunkHashes, nil),
		})
	}
	return res, nil
}

// LoadSnapshotChunk returns a chunk of a kept snapshot, read from disk.
func (a *App) LoadSnapshotChunk(_ context.Context, req *abci.LoadSnapshotChunkRequest) (*abci.LoadSnapshotChunkResponse, error) {
	if a.snaps.store == nil || req.Format != state.SnapshotFormat {
		return &abci.LoadSnapshotChunkResponse{}, nil
	}
	c, err := a.snaps.store.chunk(int64(req.Height), int(req.Chunk))
	if err != nil {
		a.log.Warn("state snapshot chunk unreadable", "height", req.Height, "chunk", req.Chunk, "err", err)
		return &abci.LoadSnapshotChunkResponse{}, nil
	}
	return &abci.LoadSnapshotChunkResponse{Chunk: c}, nil
}

// OfferSnapshot accepts a snapshot in our format whose metadata names one
// hash per chunk, when the machine can restore and the node has a home to
// spool it in.
func (a *App) OfferSnapshot(_ context.Context, req *abci.OfferSnapshotRequest) (*abci.OfferSnapshotResponse, error) {
	if _, ok := a.m.(snapshotter); !ok || a.snaps.store == nil {
		return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_ABORT}, nil
	}
	s := req.Snapshot
	switch {
	case s == nil || s.Format != state.SnapshotFormat:
		return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_REJECT_FORMAT}, nil
	case s.Chunks == 0 || s.Chunks > maxSnapshotChunks || len(s.Metadata) != sha256.Size*int(s.Chunks):
		return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_REJECT}, nil
	}
	if free, _, err := fsutil.Space(a.snaps.store.dir); err == nil && uint64(s.Chunks)*state.SnapshotChunkSize > free {
		a.log.Warn("refused a state snapshot larger than the free disk", "height", s.Height, "chunks", s.Chunks, "freeBytes", free)
		return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_REJECT}, nil
	}
	spool := filepath.Join(a.snaps.store.dir, "restore.tmp")
	if err := os.RemoveAll(spool); err != nil {
		return nil, fmt.Errorf("state sync: %w", err)
	}
	if err := os.MkdirAll(spool, 0o700); err != nil {
		return nil, fmt.Errorf("state sync: %w", err)
	}
	a.snaps.mu.Lock()
	a.snaps.offered, a.snaps.appHash = s, bytes.Clone(req.AppHash)
	a.snaps.spool, a.snaps.received, a.snaps.left = spool, make([]bool, s.Chunks), int(s.Chunks)
	a.snaps.mu.Unlock()
	a.log.Info("restoring state from a snapshot", "height", s.Height, "chunks", s.Chunks)
	return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_ACCEPT}, nil
}

// ApplySnapshotChunk checks a chunk against the offered metadata and spools
// it to disk; with the last one, it restores the machine from the spooled
// chunks, read as a stream.
func (a *App) ApplySnapshotChunk(_ context.Context, req *abci.ApplySnapshotChunkRequest) (*abci.ApplySnapshotChunkResponse, error) {
	a.snaps.mu.Lock()
	s := a.snaps.offered
	if s == nil || req.Index >= s.Chunks {
		a.snaps.mu.Unlock()
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_ABORT}, nil
	}
	if len(req.Chunk) > state.SnapshotChunkSize {
		// The metadata's hash may well match: the offer itself is bad.
		spool := a.snaps.spool
		a.snaps.offered, a.snaps.received = nil, nil
		a.snaps.mu.Unlock()
		os.RemoveAll(spool)
		a.log.Warn("refused a state snapshot with an oversized chunk", "height", s.Height, "chunk", req.Index,
			"bytes", len(req.Chunk), "sender", req.Sender)
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_REJECT_SNAPSHOT,
			RejectSenders: []string{req.Sender}}, nil
	}
	h := sha256.Sum256(req.Chunk)
	if !bytes.Equal(h[:], s.Metadata[sha256.Size*int(req.Index):sha256.Size*int(req.Index+1)]) {
		a.snaps.mu.Unlock()
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_RETRY,
			RefetchChunks: []uint32{req.Index}, RejectSenders: []string{req.Sender}}, nil
	}
	if !a.snaps.received[req.Index] {
		if err := writeFileSync(filepath.Join(a.snaps.spool, chunkName(int(req.Index))), req.Chunk); err != nil {
			a.snaps.mu.Unlock()
			return nil, fmt.Errorf("state sync: spool chunk %d: %w", req.Index, err)
		}
		a.snaps.received[req.Index] = true
		a.snaps.left--
	}
	if a.snaps.left > 0 {
		a.snaps.mu.Unlock()
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_ACCEPT}, nil
	}
	height, chunks, spool, appHash := int64(s.Height), int(s.Chunks), a.snaps.spool, a.snaps.appHash
	a.snaps.offered, a.snaps.received = nil, nil
	a.snaps.mu.Unlock()
	defer os.RemoveAll(spool)

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	r := &chunkFiles{dir: spool, n: chunks}
	defer r.Close()
	err := a.m.(snapshotter).RestoreFrom(height, r, appHash)
	if errors.Is(err, state.ErrBadSnapshot) {
		a.log.Warn("refused a state snapshot", "height", height, "err", err)
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_REJECT_SNAPSHOT}, nil
	}
	if err != nil {
		return nil, err
	}
	a.height.Store(height)
	a.pending = height
	return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_ACCEPT}, nil
}

// chunkFiles reads spooled chunk files 0..n-1 in order, one open at a time.
type chunkFiles struct {
	dir  string
	n    int
	next int
	cur  *os.File
}

func (c *chunkFiles) Read(p []byte) (int, error) {
	for {
		if c.cur == nil {
			if c.next == c.n {
				return 0, io.EOF
			}
			f, err := os.Open(filepath.Join(c.dir, chunkName(c.next)))
			if err != nil {
				return 0, err
			}
			c.cur, c.next = f, c.next+1
		}
		n, err := c.cur.Read(p)
		if errors.Is(err, io.EOF) {
			c.cur.Close()
			c.cur = nil
			if n == 0 {
				continue
			}
			err = nil
		}
		return n, err
	}
}

// Close closes the open chunk file.
func (c *chunkFiles) Close() error {
	if c.cur != nil {
		return c.cur.Close()
	}
	return nil
}
