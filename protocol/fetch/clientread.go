package fetch

import (
	"fmt"
	"time"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/protocol/fetch/pb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// readLoop hands replies, which come in request order, to their calls.
func (c *fetchConn) readLoop() {
	// One frame at a time, each a reply asked for: a provider that stalls
	// mid-frame pins one frame.
	fr := p2p.NewFrameReader(c.s, MaxFrame).WholeFrames()
	for {
		r := &reply{FetchReply: new(pb.FetchReply)}
		var err error
		r.frame, err = readFetchReply(fr, r.FetchReply)
		if err != nil {
			if c.drained() {
				return // Close closed it with nothing due
			}
			c.fail(p2p.ReadFailure(c.p, err))
			_ = c.s.Reset()
			return
		}
		if testHookReplyRead != nil {
			testHookReplyRead()
		}
		c.mu.Lock()
		if len(c.queue) == 0 || c.queue[0].id != r.Id {
			c.mu.Unlock()
			r.release()
			c.fail(fmt.Errorf("%w: %s answered request %d out of order", ErrProtocol, c.p, r.Id))
			_ = c.s.Reset()
			return
		}
		call := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		draining, drained := c.draining, c.draining && len(c.queue) == 0
		switch {
		case draining: // the deadline Close set stands
		case len(c.queue) == 0:
			_ = c.s.SetReadDeadline(time.Time{})
		default:
			_ = c.s.SetReadDeadline(time.Now().Add(IdleTimeout))
		}
		c.used = time.Now()
		if c.err != nil || call.abandoned {
			// Its call failed (Close began, or the stream broke) or
			// gave up: nobody takes the reply.
			r.release()
		} else {
			// Under mu (the channel has room for it): handed
			// before the calls fail or give up, or not at all.
			call.reply <- r
		}
		c.mu.Unlock()
		<-c.slots
		if drained {
			_ = c.s.Close()
			return
		}
	}
}

// testHookReplyRead, when set, is called by every reader once it has read
// a reply, before handing it on.
var testHookReplyRead func()

// readFetchReply reads one FetchReply frame, checking the announced length
// against MaxFrame before allocating, and decodes it without copying the
// data bytes out of the frame, whose pooled body it returns (nil when the
// reply was decoded into copies and the body recycled).
func readFetchReply(fr *p2p.FrameReader, r *pb.FetchReply) (frame []byte, err error) {
	body, err := fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	if decodeFetchData(body, r) {
		return body, nil
	}
	if err := checkReply(body); err != nil {
		p2p.RecycleFrame(body)
		fr.CountDecodeError()
		return nil, err
	}
	err = proto.Unmarshal(body, r)
	p2p.RecycleFrame(body) // Unmarshal copied what r keeps
	if err != nil {
		return nil, fmt.Errorf("%w: undecodable fetch reply of %d bytes: %w", ErrProtocol, len(body), err)
	}
	return nil, nil
}

// decodeFetchData decodes a FetchReply of id, status, reason, data, size
// and busy only, aliasing data into body; false means decode it with proto.Unmarshal.
func decodeFetchData(body []byte, r *pb.FetchReply) bool {
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return false
		}
		body = body[n:]
		switch {
		case typ == protowire.VarintType && (num == 1 || num == 2 || num == 6 || num == 7):
			v, m := protowire.ConsumeVarint(body)
			if m < 0 {
				return false
			}
			body = body[m:]
			switch num {
			case 1:
				r.Id = v
			case 2:
				r.Status = pb.FetchStatus(int32(v))
			case 6:
				r.Size = v
			case 7:
				r.Busy = v != 0
			}
		case typ == protowire.BytesType && (num == 3 || num == 5):
			v, m := protowire.ConsumeBytes(body)
			if m < 0 {
				return false
			}
			body = body[m:]
			if num == 3 {
				r.Reason = string(v)
			} else {
				r.Data = v
			}
		default:
			return false
		}
	}
	return true
}
