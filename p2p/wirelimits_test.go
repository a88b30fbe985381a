package p2p_test

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/satchel-net/satchel/p2p"
)

// hops encodes a message whose field 9 repeats n times, each holding a
// message whose field 2 (bytes) repeats addrs times.
func hops(n, addrs int) []byte {
	var hop []byte
	for range addrs {
		hop = protowire.AppendTag(hop, 2, protowire.BytesType)
		hop = protowire.AppendBytes(hop, []byte{1, 2})
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, 7)
	for range n {
		b = protowire.AppendTag(b, 9, protowire.BytesType)
		b = protowire.AppendBytes(b, hop)
	}
	return b
}

var hopLimits = p2p.WireLimits{9: {Max: 7, Sub: p2p.WireLimits{2: {Max: 8}}}}

func TestCheckWire(t *testing.T) {
	for name, tc := range map[string]struct {
		b    []byte
		want error
	}{
		"within":              {hops(7, 8), nil},
		"empty":               {nil, nil},
		"too many":            {hops(8, 0), p2p.ErrTooManyElements},
		"too many nested":     {hops(1, 9), p2p.ErrTooManyElements},
		"a flood of elements": {hops(2_000_000, 0), p2p.ErrTooManyElements},
	} {
		if err := p2p.CheckWire(tc.b, hopLimits); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	// A singular message field limited to 1: repeats (which protobuf would
	// merge, concatenating their lists) are refused, and counts do not
	// add up across the occurrences of another field.
	outer := protowire.AppendTag(nil, 2, protowire.BytesType)
	outer = protowire.AppendBytes(outer, hops(7, 0))
	single := p2p.WireLimits{2: {Max: 1, Sub: hopLimits}}
	if err := p2p.CheckWire(outer, single); err != nil {
		t.Fatalf("one body: %v", err)
	}
	if err := p2p.CheckWire(append(outer, outer...), single); !errors.Is(err, p2p.ErrTooManyElements) {
		t.Fatalf("a repeated singular body: %v", err)
	}
	// Elements shorter than MinLen are refused.
	minLimits := p2p.WireLimits{9: {Max: 7, MinLen: 4}}
	if err := p2p.CheckWire(hops(3, 2), minLimits); err != nil {
		t.Fatalf("hops of 8 bytes, MinLen 4: %v", err)
	}
	if err := p2p.CheckWire(hops(3, 0), minLimits); !errors.Is(err, p2p.ErrTooManyElements) {
		t.Fatalf("empty hops, MinLen 4: %v", err)
	}
	// Malformed input is an error, not a panic.
	for _, bad := range [][]byte{{0x4a}, {0x4a, 0x05, 1}, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}} {
		if err := p2p.CheckWire(bad, hopLimits); err == nil {
			t.Errorf("malformed %x accepted", bad)
		}
	}
}

// TestCheckWireMatchesProtobuf: what CheckWire walks is what protobuf
// decodes (a real message's repeated field counted as protobuf sees it).
func TestCheckWireMatchesProtobuf(t *testing.T) {
	list, err := structpb.NewList([]any{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(list)
	if err != nil {
		t.Fatal(err)
	}
	if err := p2p.CheckWire(b, p2p.WireLimits{1: {Max: 3}}); err != nil {
		t.Fatalf("three values, limit 3: %v", err)
	}
	if err := p2p.CheckWire(b, p2p.WireLimits{1: {Max: 2}}); !errors.Is(err, p2p.ErrTooManyElements) {
		t.Fatalf("three values, limit 2: %v", err)
	}
}

func FuzzCheckWire(f *testing.F) {
	f.Add(hops(3, 2))
	f.Add([]byte{0x4a, 0x05, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = p2p.CheckWire(b, hopLimits)
	})
}
