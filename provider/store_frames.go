package provider

import (
	"bufio"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/wire"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// Frames of the store protocol written and read by hand: a chunk's bytes go
// from the uploader's buffer to the stream, and from the frame the provider
// read to its store, without a copy into or out of a marshalled message.

// writeFrame writes one length-prefixed protobuf frame to w.
func writeFrame(w *bufio.Writer, m proto.Message) error {
	return p2p.WriteMsg(w, m)
}

// writeSign writes the SIGN frame of exchange id.
func writeSign(w *bufio.Writer, id uint64) error {
	return writeFrame(w, &wire.StoreRequest{Id: id, Body: &wire.StoreRequest_Sign{Sign: &wire.SignRequest{}}})
}

// writeChunk writes a chunk's segments, data and SIGN frames. Data frames
// are encoded by hand so the chunk bytes go to the stream without being
// copied into a marshalled message.
func writeChunk(w *bufio.Writer, id uint64, segSize int, hashes [][]byte, data []byte) error {
	seg := &wire.StoreRequest{Id: id, Body: &wire.StoreRequest_Segments{Segments: &wire.StoreChunkSegments{
		SegmentSize: uint32(segSize), Hashes: hashes,
	}}}
	if err := writeFrame(w, seg); err != nil {
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
func writeDataFrame(w *bufio.Writer, id, off uint64, data []byte, last bool) error {
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
	total := len(outer) + innerLen
	hdr := protowire.AppendVarint(make([]byte, 0, 40), uint64(total))
	hdr = append(hdr, outer...)
	hdr = append(hdr, inner...)
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := w.Write(data); err != nil {
		return err
	}
	_, err := w.Write(trailer)
	return err
}

// readStoreFrame reads one StoreRequest frame, checking its announced
// length against MaxFrame before allocating. Data frames are decoded without
// copying the chunk bytes out of the frame.
func readStoreFrame(br *bufio.Reader, req *wire.StoreRequest) error {
	return readFrame(br, req, "store frame", func(body []byte) bool { return decodeDataFrame(body, req) })
}

// decodeDataFrame decodes body as a StoreRequest carrying StoreChunkData,
// aliasing the data bytes into body. It reports false for any other frame
// (or anything unusual), which the caller then decodes with proto.Unmarshal.
func decodeDataFrame(body []byte, req *wire.StoreRequest) bool {
	id, inner, ok := decodeDataEnvelope(body)
	if !ok {
		return false
	}
	d, ok := decodeChunkData(inner)
	if !ok {
		return false
	}
	req.Id = id
	req.Body = &wire.StoreRequest_Data{Data: d}
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
func decodeChunkData(inner []byte) (*wire.StoreChunkData, bool) {
	d := &wire.StoreChunkData{}
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
