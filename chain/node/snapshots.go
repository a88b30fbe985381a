package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"sync"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/satchel-net/satchel/chain/state"
)

// snapshotter is a machine that can export and restore its state (the
// default machine of chain/state can).
type snapshotter interface {
	Snapshot() (*state.Snapshot, error)
	Restore(s *state.Snapshot, appHash []byte) error
}

// keepSnapshots is how many snapshots a node keeps: a peer that chose one
// fetches its chunks a while later.
const keepSnapshots = 4

// snapshots serves state sync: the node keeps the snapshots of the last
// keepSnapshots heights divisible by its interval (in memory) for peers
// that join, and a
// joining node restores one offered by a peer. Chunks are checked against
// the hashes in the snapshot's metadata as they arrive; the restored state
// against the app hash CometBFT's light client verified.
type snapshots struct {
	interval int64
	wg       sync.WaitGroup

	mu      sync.Mutex
	kept    []*state.Snapshot // oldest first
	taking  bool
	offered *abci.Snapshot
	appHash []byte
	chunks  [][]byte
}

// maybeTake starts taking a snapshot after a commit at height, in the
// background, unless one is being taken.
func (s *snapshots) maybeTake(m snapshotter, height int64, log interface{ Warn(string, ...any) }) {
	if s.interval <= 0 || height%s.interval != 0 {
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
		snap, err := m.Snapshot()
		s.mu.Lock()
		defer s.mu.Unlock()
		s.taking = false
		if err != nil {
			log.Warn("state snapshot failed", "height", height, "err", err)
			return
		}
		s.kept = append(s.kept, snap)
		if len(s.kept) > keepSnapshots {
			s.kept = s.kept[1:]
		}
	}()
}

func metadata(snap *state.Snapshot) []byte { return bytes.Join(snap.ChunkHashes(), nil) }

// ListSnapshots offers the kept snapshots.
func (a *App) ListSnapshots(context.Context, *abci.ListSnapshotsRequest) (*abci.ListSnapshotsResponse, error) {
	a.snaps.mu.Lock()
	kept := append([]*state.Snapshot(nil), a.snaps.kept...)
	a.snaps.mu.Unlock()
	res := &abci.ListSnapshotsResponse{}
	for _, snap := range kept {
		res.Snapshots = append(res.Snapshots, &abci.Snapshot{
			Height: uint64(snap.Height), Format: state.SnapshotFormat, Chunks: uint32(len(snap.Chunks)),
			Hash: snap.Hash(), Metadata: metadata(snap),
		})
	}
	return res, nil
}

// LoadSnapshotChunk returns a chunk of a kept snapshot.
func (a *App) LoadSnapshotChunk(_ context.Context, req *abci.LoadSnapshotChunkRequest) (*abci.LoadSnapshotChunkResponse, error) {
	a.snaps.mu.Lock()
	defer a.snaps.mu.Unlock()
	for _, snap := range a.snaps.kept {
		if uint64(snap.Height) == req.Height && req.Format == state.SnapshotFormat && int(req.Chunk) < len(snap.Chunks) {
			return &abci.LoadSnapshotChunkResponse{Chunk: snap.Chunks[req.Chunk]}, nil
		}
	}
	return &abci.LoadSnapshotChunkResponse{}, nil
}

// OfferSnapshot accepts a snapshot in our format whose metadata names one
// hash per chunk, when the machine can restore.
func (a *App) OfferSnapshot(_ context.Context, req *abci.OfferSnapshotRequest) (*abci.OfferSnapshotResponse, error) {
	if _, ok := a.m.(snapshotter); !ok {
		return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_ABORT}, nil
	}
	s := req.Snapshot
	switch {
	case s == nil || s.Format != state.SnapshotFormat:
		return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_REJECT_FORMAT}, nil
	case s.Chunks == 0 || len(s.Metadata) != sha256.Size*int(s.Chunks):
		return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_REJECT}, nil
	}
	a.snaps.mu.Lock()
	a.snaps.offered, a.snaps.appHash, a.snaps.chunks = s, bytes.Clone(req.AppHash), make([][]byte, s.Chunks)
	a.snaps.mu.Unlock()
	a.log.Info("restoring state from a snapshot", "height", s.Height, "chunks", s.Chunks)
	return &abci.OfferSnapshotResponse{Result: abci.OFFER_SNAPSHOT_RESULT_ACCEPT}, nil
}

// ApplySnapshotChunk checks a chunk against the offered metadata and, with
// the last one, restores the machine.
func (a *App) ApplySnapshotChunk(_ context.Context, req *abci.ApplySnapshotChunkRequest) (*abci.ApplySnapshotChunkResponse, error) {
	a.snaps.mu.Lock()
	s := a.snaps.offered
	if s == nil || req.Index >= s.Chunks {
		a.snaps.mu.Unlock()
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_ABORT}, nil
	}
	h := sha256.Sum256(req.Chunk)
	if !bytes.Equal(h[:], s.Metadata[sha256.Size*int(req.Index):sha256.Size*int(req.Index+1)]) {
		a.snaps.mu.Unlock()
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_RETRY,
			RefetchChunks: []uint32{req.Index}, RejectSenders: []string{req.Sender}}, nil
	}
	a.snaps.chunks[req.Index] = bytes.Clone(req.Chunk)
	for _, c := range a.snaps.chunks {
		if c == nil {
			a.snaps.mu.Unlock()
			return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_ACCEPT}, nil
		}
	}
	snap := &state.Snapshot{Height: int64(s.Height), Chunks: a.snaps.chunks}
	appHash := a.snaps.appHash
	a.snaps.offered, a.snaps.chunks = nil, nil
	a.snaps.mu.Unlock()

	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return nil, errClosed
	}
	err := a.m.(snapshotter).Restore(snap, appHash)
	if errors.Is(err, state.ErrBadSnapshot) {
		a.log.Warn("refused a state snapshot", "height", snap.Height, "err", err)
		return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_REJECT_SNAPSHOT}, nil
	}
	if err != nil {
		return nil, err
	}
	a.height.Store(snap.Height)
	a.pending = snap.Height
	return &abci.ApplySnapshotChunkResponse{Result: abci.APPLY_SNAPSHOT_CHUNK_RESULT_ACCEPT}, nil
}
