package fetch

import (
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/p2p"
)

// Limits of the fetch protocol (docs/PROTOCOL.md). Both sides enforce them; a
// peer that exceeds a frame limit has its stream reset.
const (
	// MaxFrame is the largest reply frame a reader reads: a 4 MiB payload
	// plus room for the fields around it. The length prefix is checked
	// against it before anything is allocated.
	MaxFrame = p2p.DefaultMaxFrame
	// MaxRequestFrame is the largest request frame a provider reads: a
	// HAVE of MaxHaveCIDs CIDs of up to 76 bytes each (a CIDv1 of a 64-byte
	// digest takes 68; Satchel's own, SHA-256, 36), which is the largest
	// request; a GET is under 100 bytes. Client.Have splits its HAVEs to
	// fit. A larger frame resets the stream before its body is read.
	MaxRequestFrame = 80 << 10
	// MaxBlockSize is the largest block Client.GetBlock accepts: a chunk of
	// up to chunker.MaxChunkSize. Interior DAG nodes (at most
	// chunker.MaxLinks links) are far smaller. A larger announced size is
	// refused before any reply is buffered.
	MaxBlockSize = chunker.MaxChunkSize
	// MaxHaveCIDs is the most CIDs one HAVE request may ask about.
	MaxHaveCIDs = 1024
	// MaxGetBytes is the most bytes one GET reply carries.
	MaxGetBytes = 4 << 20
	// MaxInFlight is how many requests a reader keeps pipelined on one
	// stream, and how many requests a provider reads ahead per stream
	// (of which MaxHeldGETs GETs hold memory).
	MaxInFlight = 8
	// MaxHeldGETs is how many GETs of one stream a provider holds a reply's
	// memory for at once: the reply being written and the next one
	// prepared. Further requests wait, unread past MaxInFlight, so a reader
	// that stops reading pins two replies' memory, not MaxInFlight.
	// Measured (BenchmarkFetchHeldGETs: 1 MiB blocks over loopback from
	// a warm page cache, on a loaded 2-core VM), holding MaxInFlight
	// instead showed no gain, the ranges overlapping (275–570 MB/s held
	// 2, 258–534 MB/s held 8), and cost more CPU (median 1.57 against
	// 1.69 CPU s/GiB). Not measured: blocks read slower than a reply is
	// written (a cold disk), where more held GETs could read ahead more.
	MaxHeldGETs = 2
	// IdleTimeout is how long a stream may sit with no frame moving while
	// work is pending before it is reset; a provider closes a stream idle
	// that long.
	IdleTimeout = 30 * time.Second
	// CloseDrain is how long Client.Close reads the replies still due on a
	// stream before it resets it (see Client.Close, WithCloseDrain): 2 s
	// is the eight
	// 4 MiB replies a stream may have in flight at 16 MB/s, and a
	// 1 MiB-block read-ahead at 4 MB/s.
	CloseDrain = 2 * time.Second
)
