package provider

import (
	"context"
	"testing"
)

// An object's block list is kept from one turn to its next, not decoded
// again, yet an object deleted between its turns is not re-read from the
// kept list: its re-check ends, and none of its blocks, gone with it, is
// handed to the repair to be fetched back.
func TestAuditResyncTurnObjectDeletedBetweenTurns(t *testing.T) {
	const size, slice = 16 << 10, 4 << 10
	s, _, _, _ := resyncPauseFixture(t, 1, size, slice, 1<<30, 1<<30)
	req := resyncRequest{bag: "dynamic:channel:1", object: 1, auditor: "operator-a"}
	var kept keptBlocks
	ctx := context.Background()
	if s.resyncTurn(ctx, &req, &kept) || req.next == 0 || kept.blocks == nil {
		t.Fatalf("first turn of a %d-byte object in %d-byte turns: done or nothing kept (at block %d, %d kept)", size, slice, req.next, len(kept.blocks))
	}
	if err := s.bs.DeleteObject(1); err != nil {
		t.Fatal(err)
	}
	if !s.resyncTurn(ctx, &req, &kept) {
		t.Fatal("the re-check of an object deleted between its turns goes on")
	}
	s.repairs.mu.Lock()
	defer s.repairs.mu.Unlock()
	if req.unreadable != 0 || len(s.repairs.pending) != 0 {
		t.Fatalf("%d blocks of the deleted object found unreadable, %d handed to the repair; want none", req.unreadable, len(s.repairs.pending))
	}
}

// A turn looks up at most resyncTurnBlocks blocks, whatever they read: an
// object whose blocks are all missing (they read nothing) is not looked
// up whole in one turn, holding up the other objects' turns. Each missing
// block is counted and handed to the repair once.
func TestAuditResyncTurnBoundsLookups(t *testing.T) {
	const chunks = resyncTurnBlocks + 100
	s, _, _, _ := resyncPauseFixture(t, 1, chunks<<10, 16<<20, 1<<30, 1<<30)
	m, _, err := s.bs.Manifest(1)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range m.Chunks {
		if err := s.bs.Delete(c.CID); err != nil {
			t.Fatal(err)
		}
	}
	req := resyncRequest{bag: "dynamic:channel:1", object: 1, auditor: "operator-a"}
	var kept keptBlocks
	ctx := context.Background()
	if s.resyncTurn(ctx, &req, &kept) || req.next > resyncTurnBlocks {
		t.Fatalf("first turn over %d missing chunks went to block %d; want at most %d looked up", chunks, req.next, resyncTurnBlocks)
	}
	turns := 2 // the first, and the one that ends the re-check
	for !s.resyncTurn(ctx, &req, &kept) {
		turns++
	}
	s.repairs.mu.Lock()
	defer s.repairs.mu.Unlock()
	if turns != 2 || req.unreadable != chunks || len(s.repairs.pending) != chunks {
		t.Fatalf("%d turns, %d blocks unreadable, %d handed to the repair; want 2 turns and all %d missing chunks once", turns, req.unreadable, len(s.repairs.pending), chunks)
	}
}
