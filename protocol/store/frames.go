package store

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/store/pb"
)

// Frames of the store protocol written and read by hand: a chunk's bytes go
// from the uploader's buffer to the stream, and from the frame the provider
// read to its store, without a copy into or out of a marshalled message.

// writeSign writes the SIGN frame of exchange id.
func writeSign(w *p2p.FrameWriter, id uint64) error {
	return w.WriteMsg(&pb.StoreRequest{Id: id, Body: &pb.StoreRequest_Sign{Sign: &pb.SignRequest{}}})
}

// writeChunk writes a chunk's segments, data and SIGN frames. Data frames
// are encoded by hand so the chunk bytes go to the stream without being
// copied into a marshalled message.
func writeChunk(w *p2p.FrameWriter, id uint64, segSize int, hashes [][]byte, data []byte) error {
	seg := &pb.StoreRequest{Id: id, Body: &pb.StoreRequest_Segments{Segments: &pb.StoreChunkSegments{
		SegmentSize: uint32(segSize), Hashes: hashes,
	}}}
	if err := w.WriteMsg(seg); err != nil {
		return err
	}
	per := max(MaxDataFrameBytes/segSize, 1) * segSize
	off := 0
	for {
		end := min(off+per, len(data))
		if err := writeDataFrame(w, id, uint64(off), data[off:end], end == len(data)); err != nil {
			return err
		}
		off = end
		if off == len(data) {
			break
		}
	}
	return writeSign(w, id)
}

// writeDataFrame writes StoreRequest{id, data: StoreChunkData{offset, data,
// last}} in the protobuf encoding, the bytes straight from data.
func writeDataFrame(w *p2p.FrameWriter, id, off uint64, data []byte, last bool) error {
	var inner []byte
	if off != 0 {
		inner = protowire.AppendTag(inner, 1, protowire.VarintType)
		inner = protowire.AppendVarint(inner, off)
	}
	inner = protowire.AppendTag(inner, 2, protowire.BytesType)
	inner = protowire.AppendVarint(inner, uint64(len(data)))
	innerLen := len(inner) + len(data)
	var trailer []byte
	if last {
		trailer = protowire.AppendTag(nil, 3, protowire.VarintType)
		trailer = protowire.AppendVarint(trailer, 1)
		innerLen += len(trailer)
	}
	var outer []byte
	if id != 0 {
		outer = protowire.AppendTag(outer, 1, protowire.VarintType)
		outer = protowire.AppendVarint(outer, id)
	}
	outer = protowire.AppendTag(outer, 4, protowire.BytesType)
	outer = protowire.AppendVarint(outer, uint64(innerLen))
	hdr := append(outer, inner...)
	return w.WriteFrame(hdr, data, trailer)
}

// readStoreFrame reads one StoreRequest frame, checking its announced
// length against MaxFrame before allocating. Data frames are decoded without
// copying the chunk bytes out of the frame: their frame body is returned, for
// p2p.RecycleFrame once the data is no longer needed. Other frames are
// decoded into copies and their body recycled here (frame is nil).
func readStoreFrame(fr *p2p.FrameReader, req *pb.StoreRequest) (frame []byte, err error) {
	body, err := fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	if decodeDataFrame(body, req) {
		return body, nil
	}
	if err := fr.Check(body); err != nil {
		p2p.RecycleFrame(body)
		return nil, fmt.Errorf("%w: %w", ErrProtocol, err)
	}
	err = proto.Unmarshal(body, req)
	p2p.RecycleFrame(body) // Unmarshal copied what req keeps
	if err != nil {
		fr.CountDecodeError()
		return nil, fmt.Errorf("%w: undecodable store frame of %d bytes: %w", ErrProtocol, len(body), err)
	}
	return nil, nil
}

// decodeDataFrame decodes body as a StoreRequest carrying StoreChunkData,
// aliasing the data bytes into body. It reports false for any other frame
// (or anything unusual), which the caller then decodes with proto.Unmarshal.
func decodeDataFrame(body []byte, req *pb.StoreRequest) bool {
	id, inner, ok := decodeDataEnvelope(body)
	if !ok {
		return false
	}
	d, ok := decodeChunkData(inner)
	if !ok {
		return false
	}
	req.Id = id
	req.Body = &pb.StoreRequest_Data{Data: d}
	return true
}

// decodeDataEnvelope decodes a StoreRequest of an id (field 1) and a data
// body (field 4) only, returning the body's bytes aliased into body.
func decodeDataEnvelope(body []byte) (id uint64, inner []byte, ok bool) {
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return 0, nil, false
		}
		body = body[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(body)
			if m < 0 {
				return 0, nil, false
			}
			id, body = v, body[m:]
		case num == 4 && typ == protowire.BytesType && inner == nil:
			v, m := protowire.ConsumeBytes(body)
			if m < 0 {
				return 0, nil, false
			}
			inner, body = v, body[m:]
		default:
			return 0, nil, false
		}
	}
	return id, inner, inner != nil
}

// decodeChunkData decodes a StoreChunkData, aliasing its data into inner.
func decodeChunkData(inner []byte) (*pb.StoreChunkData, bool) {
	d := &pb.StoreChunkData{}
	for len(inner) > 0 {
		num, typ, n := protowire.ConsumeTag(inner)
		if n < 0 {
			return nil, false
		}
		inner = inner[n:]
		switch {
		case num == 1 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(inner)
			if m < 0 {
				return nil, false
			}
			d.Offset, inner = v, inner[m:]
		case num == 2 && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(inner)
			if m < 0 {
				return nil, false
			}
			d.Data, inner = v, inner[m:]
		case num == 3 && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(inner)
			if m < 0 {
				return nil, false
			}
			d.Last, inner = v != 0, inner[m:]
		default:
			return nil, false
		}
	}
	return d, true
}
