package fetch

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
)

// Checks on frames before they are decoded. protobuf allocates a slice
// header per element of a repeated field (and a struct per message), so a
// frame of empty two-byte elements decodes into a dozen times its size or
// more, outside every memory budget, before any count on the decoded
// message could run. Both sides therefore count the repeated fields of a
// frame on the wire first (p2p.CheckWire, which allocates nothing) and
// decode only frames within the limits.

// requestLimits bounds a FetchRequest: one body (a repeated singular
// message field would be merged by protobuf), at most MaxHaveCIDs CIDs in
// a HAVE and one CID in a GET.
var requestLimits = p2p.WireLimits{
	2: {Max: 1, Sub: p2p.WireLimits{1: {Max: MaxHaveCIDs}}}, // have{cids}
	3: {Max: 1, Sub: p2p.WireLimits{1: {Max: 1}}},           // get{cid}
}

// readRequest reads one request frame of at most MaxRequestFrame bytes and
// decodes it into req once its fields are within requestLimits. A frame
// over the limits, or one that does not decode, gives an error wrapping
// ErrProtocol (and is counted as a decode error): reset the stream.
func readRequest(fr *p2p.FrameReader, req *pb.FetchRequest) error {
	body, err := fr.ReadFrame()
	if err != nil {
		return err
	}
	defer p2p.RecycleFrame(body) // Unmarshal copies what req keeps
	if err := p2p.CheckWire(body, requestLimits); err != nil {
		fr.CountDecodeError()
		return fmt.Errorf("%w: fetch request of %d bytes refused before decoding (at most %d CIDs in a HAVE, one body): %w",
			ErrProtocol, len(body), MaxHaveCIDs, err)
	}
	if err := proto.Unmarshal(body, req); err != nil {
		fr.CountDecodeError()
		return fmt.Errorf("%w: undecodable fetch request of %d bytes: %w", ErrProtocol, len(body), err)
	}
	return nil
}

// replyLimits bounds a FetchReply's fields that a decoder would allocate
// for more than once: at most MaxHaveCIDs occurrences of have (each
// occurrence is counted further by haveFlags, since a packed one holds
// many flags) and one reason and one data.
var replyLimits = p2p.WireLimits{
	3: {Max: 1},           // reason
	4: {Max: MaxHaveCIDs}, // have, unpacked or packed runs
	5: {Max: 1},           // data
}

// checkReply checks a FetchReply frame before it is decoded: its fields
// within replyLimits and at most MaxHaveCIDs have flags in all, packed or
// not. The error wraps ErrProtocol.
func checkReply(body []byte) error {
	if err := p2p.CheckWire(body, replyLimits); err != nil {
		return fmt.Errorf("%w: fetch reply of %d bytes refused before decoding: %w", ErrProtocol, len(body), err)
	}
	n, err := haveFlags(body)
	if err != nil {
		return fmt.Errorf("%w: undecodable fetch reply of %d bytes: %w", ErrProtocol, len(body), err)
	}
	if n > MaxHaveCIDs {
		return fmt.Errorf("%w: fetch reply carries %d HAVE flags, over the %d-CID limit of one HAVE", ErrProtocol, n, MaxHaveCIDs)
	}
	return nil
}

// haveFlags counts the have flags of a FetchReply frame: one per unpacked
// occurrence, one per varint of a packed one (a byte below 0x80 ends a
// varint).
func haveFlags(body []byte) (int, error) {
	count := 0
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return 0, protowire.ParseError(n)
		}
		body = body[n:]
		if num == 4 && typ == protowire.BytesType {
			packed, m := protowire.ConsumeBytes(body)
			if m < 0 {
				return 0, protowire.ParseError(m)
			}
			body = body[m:]
			for _, b := range packed {
				if b < 0x80 {
					count++
				}
			}
			continue
		}
		if num == 4 && typ == protowire.VarintType {
			count++
		}
		m := protowire.ConsumeFieldValue(num, typ, body)
		if m < 0 {
			return 0, protowire.ParseError(m)
		}
		body = body[m:]
	}
	return count, nil
}
