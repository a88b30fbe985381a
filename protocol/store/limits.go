package store

import (
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
)

// Limits of the store protocol (docs/PROTOCOL.md). Both sides enforce them; a
// peer that exceeds a frame limit has its stream reset.
const (
	// MaxFrame is the largest frame either side reads: a 4 MiB payload plus
	// room for the fields around it (p2p.DefaultMaxFrame). The length prefix
	// is checked against it before anything is allocated.
	MaxFrame = p2p.DefaultMaxFrame
	// MaxChunkLength is the largest chunk a provider agrees to store: the
	// chunker's MaxChunkSize, so that every chunk fits one data frame.
	MaxChunkLength = chunker.MaxChunkSize
	// MaxChunksInFlight is how many chunk exchanges may be open at once on
	// one stream. The uploader keeps at most this many in flight; a request
	// over it is refused. A window this deep keeps one stream full while
	// earlier chunks wait for their fsync: bytes in flight must cover
	// throughput × (pipe + commit latency), some 30 MiB at 1 GB/s.
	MaxChunksInFlight = 64
	// MaxStreamBuffered bounds the chunk bytes a provider holds in memory per
	// stream (received, not yet durable). Past it the provider stops reading
	// the stream until stores complete, which slows the uploader through
	// flow control instead of failing it.
	MaxStreamBuffered = 32 << 20
	// MinSegmentSize and MaxSegmentSize bound the segment size of a
	// STORE_CHUNK_SEGMENTS map. A chunk may be one segment.
	MinSegmentSize = 16 << 10
	MaxSegmentSize = MaxChunkLength
	// DefaultSegmentSize is the segment size an uploader uses unless
	// WithSegmentSize says otherwise: a whole chunk. A chunk always travels
	// in one data frame, which the provider reads whole before checking
	// anything, so smaller segments would detect nothing earlier; a
	// one-segment map's hash is the chunk's own sha2-256 digest, so neither
	// side hashes the bytes twice.
	DefaultSegmentSize = MaxSegmentSize
	// MaxDataFrameBytes is the most chunk bytes one STORE_CHUNK_DATA frame
	// carries. A chunk of up to MaxChunkLength fits one frame.
	MaxDataFrameBytes = 4 << 20
	// MaxProofBlocks and MaxProofBytes bound a chunk request's proof.
	MaxProofBlocks = 9
	MaxProofBytes  = 256 << 10
	// MaxBindChunks is the most chunks a BIND may list: a 4 MiB frame of
	// chunk references (about 45 bytes each) — objects of up to about
	// 90 GiB with 1 MiB chunks.
	MaxBindChunks = 90_000
	// BindChunkMemory and BindFrameMemory are what a provider reserves in
	// its memory budget (p2p.Reserve) for a BIND before processing it:
	// BindFrameMemory plus BindChunkMemory per listed chunk, an upper
	// estimate of the decoded list, the manifest and the DAG builder (a
	// BIND of MaxBindChunks chunks is charged about 32 MiB). A chunk
	// request is charged its length. A request the budget has no room for
	// is REFUSED with a reason naming the limit.
	BindChunkMemory = 320
	BindFrameMemory = 4 << 20
	// IdleTimeout is how long a stream may sit with no frame moving in
	// either direction while work is pending before it is reset.
	IdleTimeout = 30 * time.Second
	// MinProgressBytes is the progress a stream's waiting exchanges must
	// make: an exchange that has waited IdleTimeout for its uploader is ended
	// FAILED when the stream carried fewer than MinProgressBytes data bytes
	// since it last carried that many, IdleTimeout or more ago
	// (handler_stall.go). Some data is not enough: a peer trickling a few
	// real bytes of an agreed chunk every IdleTimeout would hold every
	// agreed chunk's reservation (up to MaxStreamBuffered, and the node's
	// budget) for ever. 64 KiB per IdleTimeout is about 17 kbit/s, far
	// below any uplink that can upload at all (an EDGE phone sends several
	// times that, and a 1 MiB data frame must already arrive within
	// IdleTimeout, some 280 kbit/s), yet it makes holding the whole stream
	// budget cost the peer its size in real chunk bytes every ~4 hours.
	MinProgressBytes = 64 << 10
	// AuthorizeTimeout bounds each question the handler asks its Authorizer
	// (the chain) about a request; it must leave the uploader's stream well
	// inside IdleTimeout.
	AuthorizeTimeout = IdleTimeout / 2
	// DefaultSessionTTL is how long a provider keeps unbound chunks when the
	// request names no expiry.
	DefaultSessionTTL = 24 * time.Hour
	// MaxSessionTTL caps the expiry an uploader may ask for: unbound chunks
	// are deleted at most this long after they arrive.
	MaxSessionTTL = 7 * 24 * time.Hour
	// SessionIDLength is the length of a streamed upload's session ID.
	SessionIDLength = 16
	// MaxForwardHops is the longest forward list a chunk request may carry:
	// a pipeline of up to MaxForwardHops+1 providers.
	MaxForwardHops = 7
	// MaxForwardAddrs and MaxForwardAddrBytes bound the addresses given for
	// one hop of a forward list.
	MaxForwardAddrs     = 8
	MaxForwardAddrBytes = 256
	// MaxHopReason is the longest reason a provider relays for a failed
	// hop (longer ones are cut), so failures relayed up a pipeline of
	// MaxForwardHops stay far inside a frame.
	MaxHopReason = 1024
	// ForwardTimeout bounds a provider's forwarding of one chunk down the
	// rest of its pipeline: every hop after a failed one is tried within it,
	// and a hop it leaves untried is reported failed. It leaves the
	// upstream stream inside IdleTimeout.
	ForwardTimeout = IdleTimeout / 2
	// ForwardHopMargin is how much sooner each hop down a pipeline gives
	// up forwarding than the hop before it (see ForwardTimeout): time for
	// a chunk to reach the next hop and the answer to come back.
	ForwardHopMargin = ForwardTimeout / (2 * MaxForwardHops)
)

// MaxReplyFrame is the largest reply frame a pushing side reads: a reply
// holds at most the head's receipt, MaxForwardHops relayed receipts and
// MaxForwardHops failures of up to MaxHopReason bytes (about 10 KiB).
const MaxReplyFrame = 64 << 10

// minChunkRef is the fewest bytes a BIND's chunk reference may take: a
// CID (34 bytes for the shortest, a CIDv0) and its tag.
const minChunkRef = 36

// maxSegments is the most segments a chunk has: MaxChunkLength in
// MinSegmentSize segments, the last one short (rounded up: 128).
const maxSegments = (MaxChunkLength + MinSegmentSize - 1) / MinSegmentSize

// wireSlack is how many times its limit a list may hold on the wire: a
// list a little over its limit is decoded and REFUSED with a reason that
// names the limit (an uploader's bug); a flood is a protocol error.
const wireSlack = 8

// requestLimits bound the repeated fields of a StoreRequest frame before it
// is decoded (p2p.CheckWire): each element decodes into a header of its
// own, so a frame of empty elements would otherwise be decoded whole
// before any count is checked. Each body is singular (Max 1: protobuf
// would merge repeats, concatenating their lists).
var requestLimits = p2p.WireLimits{
	2: {Max: 1, Sub: p2p.WireLimits{ // request
		7: {Max: wireSlack * MaxProofBlocks},                                                             // proof
		9: {Max: wireSlack * MaxForwardHops, Sub: p2p.WireLimits{2: {Max: wireSlack * MaxForwardAddrs}}}, // forward, addrs
	}},
	3: {Max: 1, Sub: p2p.WireLimits{2: {Max: maxSegments}}},                            // segments, hashes
	4: {Max: 1},                                                                        // data
	5: {Max: 1},                                                                        // sign
	6: {Max: 1, Sub: p2p.WireLimits{4: {Max: MaxBindChunks + 1, MinLen: minChunkRef}}}, // bind, chunks
	7: {Max: 1},                                                                        // drop
}

// replyLimits bound the repeated fields of a StoreReply frame, as
// requestLimits do a request's.
var replyLimits = p2p.WireLimits{
	4: {Max: 1},                          // receipt
	5: {Max: wireSlack * MaxForwardHops}, // relayed
	6: {Max: wireSlack * MaxForwardHops}, // hop_failures
}
