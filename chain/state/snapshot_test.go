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
