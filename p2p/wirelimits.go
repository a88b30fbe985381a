package p2p

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// ErrTooManyElements means a frame holds more elements of a repeated field
// than its protocol allows. It is checked before the frame is decoded:
// protobuf allocates a header (and, for a message, a struct) per element,
// so a frame of empty two-byte elements would decode into tens of times
// its size, outside every memory budget, before any count could be
// checked on the decoded message.
var ErrTooManyElements = errors.New("p2p: too many elements in a frame")

// WireLimits bounds, by field number (below 64), how often each field of a
// protobuf message may occur. Fields not listed are not counted.
type WireLimits map[protowire.Number]WireLimit

// WireLimit bounds one field.
type WireLimit struct {
	// Max is how many times the field may occur in one message (a
	// singular message field: 1, as protobuf would merge repeats).
	Max int
	// MinLen, for a bytes or message field, is the fewest bytes each
	// occurrence may hold: a list of elements that each must carry, say,
	// a CID cannot be a list of empty elements.
	MinLen int
	// Sub, for a message field, limits the fields of each message it
	// holds.
	Sub WireLimits
}

// CheckWire walks the protobuf message b without allocating and returns an
// error wrapping ErrTooManyElements if a field occurs more often than
// limits allow, at any depth limits describe (or a wrapped
// protowire parse error if b is malformed). Run it on a frame before
// proto.Unmarshal.
func CheckWire(b []byte, limits WireLimits) error {
	return checkWire(b, limits, 0)
}

// maxWireDepth bounds the nesting CheckWire follows (limits are static, so
// only a cyclic WireLimits could reach it).
const maxWireDepth = 16

func checkWire(b []byte, limits WireLimits, depth int) error {
	if depth > maxWireDepth {
		return fmt.Errorf("%w: nested deeper than %d", ErrTooManyElements, maxWireDepth)
	}
	// Field numbers of limited fields are small: counted in an array.
	var counts [64]int
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		lim, limited := limits[num]
		var val []byte
		if typ == protowire.BytesType {
			val, n = protowire.ConsumeBytes(b)
		} else {
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return protowire.ParseError(n)
		}
		b = b[n:]
		if !limited {
			continue
		}
		if num >= protowire.Number(len(counts)) {
			return fmt.Errorf("p2p: wire limits name field %d; only fields below %d can be limited", num, len(counts))
		}
		counts[num]++
		if lim.Max > 0 && counts[num] > lim.Max {
			return fmt.Errorf("%w: field %d occurs more than %d times", ErrTooManyElements, num, lim.Max)
		}
		if lim.MinLen > 0 && (typ != protowire.BytesType || len(val) < lim.MinLen) {
			return fmt.Errorf("%w: field %d holds %d bytes, fewer than %d", ErrTooManyElements, num, len(val), lim.MinLen)
		}
		if lim.Sub != nil && typ == protowire.BytesType {
			if err := checkWire(val, lim.Sub, depth+1); err != nil {
				return err
			}
		}
	}
	return nil
}
