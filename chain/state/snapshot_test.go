package state

import (
	"bytes"
	"errors"
	"maps"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestSnapshotRestore(t *testing.T) {
	h := newHarness(t)
	bag, _ := h.channelBag(1000, 1<<20)
	h.registerObjects(alice, bag, 120)
	height, hash, _ := h.m.Info()
	s, err := h.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if s.Height != height {
		t.Fatalf("snapshot height %d; want %d", s.Height, height)
	}

	m2, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	if err := m2.Restore(s, hash); err != nil {
		t.Fatal(err)
	}
	h2, hash2, _ := m2.Info()
	if h2 != height || !bytes.Equal(hash2, hash) {
		t.Fatalf("restored Info %d %X; want %d %X", h2, hash2, height, hash)
	}
	if !maps.Equal(dumpState(t, m2), dumpState(t, h.m)) {
		t.Fatal("restored state differs")
	}
	// The restored machine executes the next block like the original.
	tx := h.sign(alice, chain.MsgCreateMember{Handle: "next"})
	b := chain.BlockInfo{Height: height + 1, Hash: defaultHash(height + 1)}
	_, want, err := h.m.FinalizeBlock(b, [][]byte{tx})
	if err != nil {
		t.Fatal(err)
	}
	_, got, err := m2.FinalizeBlock(b, [][]byte{tx})
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("next block on the restored machine: %X, %v; want %X", got, err, want)
	}
	if err := m2.Commit(); err != nil {
		t.Fatal(err)
	}

	// A snapshot that does not hash to the trusted app hash is refused.
	bad := &Snapshot{Height: s.Height, Chunks: [][]byte{bytes.Clone(s.Chunks[0])}}
	bad.Chunks[0][len(bad.Chunks[0])-1] ^= 1
	m3, _ := NewMemory()
	defer m3.Close()
	if err := m3.Restore(bad, hash); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("tampered snapshot: %v; want ErrBadSnapshot", err)
	}
	if err := m2.Restore(s, hash); err == nil {
		t.Fatal("restore into a machine with state succeeded")
	}
}

// TestRestoreAfterABadSnapshot: a snapshot refused for its app hash leaves
// nothing behind, so an honest snapshot of the same height restores next.
func TestRestoreAfterABadSnapshot(t *testing.T) {
	h := newHarness(t)
	bag, _ := h.channelBag(1000, 1<<20)
	h.registerObjects(alice, bag, 20)
	height, hash, _ := h.m.Info()
	s, err := h.m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer m2.Close()
	// A snapshot cut short fails part way through the import.
	cut := &Snapshot{Height: s.Height, Chunks: [][]byte{s.Chunks[0][:len(s.Chunks[0])/2]}}
	if err := m2.Restore(cut, hash); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("restore of a truncated snapshot = %v; want ErrBadSnapshot", err)
	}
	wrong := bytes.Clone(hash)
	wrong[0] ^= 1
	if err := m2.Restore(s, wrong); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("restore under the wrong app hash = %v; want ErrBadSnapshot", err)
	}
	if h2, _, _ := m2.Info(); h2 != 0 {
		t.Fatalf("height %d after a refused snapshot; want 0", h2)
	}
	if err := m2.Restore(s, hash); err != nil {
		t.Fatalf("honest snapshot after a refused one: %v", err)
	}
	if h2, hash2, _ := m2.Info(); h2 != height || !bytes.Equal(hash2, hash) {
		t.Fatalf("restored Info %d %X; want %d %X", h2, hash2, height, hash)
	}
	if !maps.Equal(dumpState(t, m2), dumpState(t, h.m)) {
		t.Fatal("restored state differs")
	}
}
