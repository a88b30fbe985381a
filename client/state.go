package client

import (
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chain"
)

// FileState is where an upload stands as a whole: the Point Network File
// states, plus the chain's verdict.
type FileState int

// File states, in the order an upload moves through them. FileFailed can
// follow any of them.
const (
	// FileCreated: the upload exists, nothing read yet; or, for an
	// Upload, its stream is being written to the spool (Progress.Bytes
	// counts it) and nothing is sent before Commit.
	FileCreated FileState = iota
	// FileChunking: the content is being split and hashed; chunks go to
	// providers as they are cut only under a storage contract
	// (WithContracts), else once the object is registered.
	FileChunking
	// FileRegistering: the object is being registered on chain.
	FileRegistering
	// FileUploading: chunks are moving to providers.
	FileUploading
	// FileUploaded: every chunk has its signed receipts and every provider
	// bound the object; waiting for the chain to accept it.
	FileUploaded
	// FileAccepted: a provider accepted the object on chain. Done.
	FileAccepted
	// FileFailed: the upload stopped with an error.
	FileFailed
)

var fileStateNames = [...]string{"created", "chunking", "registering", "uploading", "uploaded", "accepted", "failed"}

// String returns the state's name.
func (s FileState) String() string {
	if s < 0 || int(s) >= len(fileStateNames) {
		return "unknown"
	}
	return fileStateNames[s]
}

// ChunkState is where one chunk of an upload stands: the Point Network Chunk
// states.
type ChunkState int

// Chunk states.
const (
	// ChunkCreated: known, not yet sent anywhere.
	ChunkCreated ChunkState = iota
	// ChunkUploading: at least one storage link is under way or some
	// receipts are still missing.
	ChunkUploading
	// ChunkUploaded: the chunk has its receipts from every target provider.
	ChunkUploaded

	numChunkStates = 3
)

var chunkStateNames = [...]string{"created", "uploading", "uploaded"}

// String returns the state's name.
func (s ChunkState) String() string {
	if s < 0 || int(s) >= len(chunkStateNames) {
		return "unknown"
	}
	return chunkStateNames[s]
}

// LinkState is where one storage link — one chunk on its way to one
// provider — stands: the Point Network StorageLink states, which are the
// steps of /satchel/store/1.0.0 (docs/PROTOCOL.md). There is no payment
// channel and no encryption step.
type LinkState int

// Storage link states, in order. LinkSigned and LinkFailed are final; a failed
// link is replaced by a new one, on the same provider or another.
const (
	// LinkCreated: a provider was chosen for the chunk.
	LinkCreated LinkState = iota
	// LinkAgreed: the provider agreed to STORE_CHUNK_REQUEST.
	LinkAgreed
	// LinkSendingSegmentMap: STORE_CHUNK_SEGMENTS is on its way.
	LinkSendingSegmentMap
	// LinkSendingData: STORE_CHUNK_DATA frames are on their way.
	LinkSendingData
	// LinkDataReceived: the provider holds the whole chunk durably.
	LinkDataReceived
	// LinkAskingForSignature: SIGN is on its way.
	LinkAskingForSignature
	// LinkSigned: a verified receipt is held.
	LinkSigned
	// LinkFailed: the provider refused or the exchange broke.
	LinkFailed

	// NumLinkStates is the number of link states, the length of
	// Progress.Links.
	NumLinkStates = 8
)

var linkStateNames = [...]string{"created", "agreed", "sending segment map", "sending data",
	"data received", "asking for signature", "signed", "failed"}

// String returns the state's name.
func (s LinkState) String() string {
	if s < 0 || int(s) >= len(linkStateNames) {
		return "unknown"
	}
	return linkStateNames[s]
}

// Op says which operation a Progress report is about.
type Op int

// Operations.
const (
	OpPut Op = iota
	OpGet
)

// String returns "put" or "get".
func (o Op) String() string {
	if o == OpGet {
		return "get"
	}
	return "put"
}

// Progress is a snapshot of an upload or a download, handed to the
// WithProgress callback. Callbacks never run concurrently with each other;
// a callback must return quickly and must not call back into the client.
type Progress struct {
	Op Op
	// File is the upload's state (uploads only: a download's stays
	// FileCreated, the zero value).
	File FileState
	// Bag, Object and Root name the object once known (Object once
	// registered, ObjectKnown says so).
	Bag         chain.BagID
	Object      chain.ObjectID
	ObjectKnown bool
	Root        cid.Cid
	// Bytes is how much of the content is done: for an upload, the bytes of
	// chunks that hold all their receipts — or, while a stream is written
	// to an Upload (File FileCreated, TotalBytes 0), the bytes spooled; the
	// count starts again from 0 when Commit uploads the spool, with
	// TotalBytes set. For a download, the bytes written. TotalBytes is the
	// content's size, 0 while unknown (a stream being written).
	Bytes, TotalBytes int64
	// Sent is the number of chunk bytes that reached providers over all
	// storage links (an upload to 3 providers sends every byte 3 times),
	// whether the uploader sent them or, pipelined, a provider passed them
	// on. A provider that held a chunk already receives none of its bytes.
	// A pipeline's hop, which the uploader does not talk to, counts as
	// holding a chunk when its receipt says it stored the chunk more than
	// a couple of seconds before the push (by the hop's clock).
	Sent int64
	// Chunks and TotalChunks count the chunks done (uploaded or fetched)
	// and all of them. A download knows TotalChunks — the chunks over the
	// range read — once its first chunk is found in the DAG.
	Chunks, TotalChunks int
	// ChunkStates counts chunks by ChunkState (uploads only).
	ChunkStates [numChunkStates]int
	// Links counts the storage links of the upload by LinkState, the
	// failed ones included.
	Links [NumLinkStates]int
	// Providers is the number of providers the content is moving to or from.
	Providers int
	// Resumed is the number of chunks no byte of which had to be sent:
	// every provider held them already, from an earlier, interrupted run of
	// the same upload (or another upload of the same content). Sent counts
	// no byte of them.
	Resumed int
	// Started is when the operation started.
	Started time.Time
}

// progressInterval bounds how often link-level changes are reported; chunk
// and file changes are reported at once.
const progressInterval = 50 * time.Millisecond

// tracker holds the File / Chunk / StorageLink states of one upload (or the
// counters of one download) and reports them to the progress callback.
// Chunk states are kept as counters plus one small per-chunk record of how
// many receipts a chunk holds, so the tracker's memory is a few bytes per
// chunk whatever the file size.
type tracker struct {
	mu      sync.Mutex
	p       Progress
	want    int     // receipts a chunk needs to be uploaded
	held    []uint8 // receipts held per chunk (uploads)
	started []bool  // a link to the chunk was created (uploads)
	size    []int32 // chunk sizes, to count Bytes (uploads)
	last    time.Time
	every   time.Duration // how often unforced changes are reported

	cbMu sync.Mutex // serialises callback calls
	fn   func(Progress)
	log  *slog.Logger // where a panic of fn is told; nil: nowhere
}

func newTracker(op Op, fn func(Progress), every time.Duration) *tracker {
	return &tracker{p: Progress{Op: op, Started: time.Now()}, fn: fn, every: every}
}

// snapshot returns a copy of the current progress.
func (t *tracker) snapshot() Progress {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.p
}

// emitLocked reports the current state; when force is false it reports at
// most every t.every.
func (t *tracker) emitLocked(force bool) {
	if t.fn == nil {
		return
	}
	now := time.Now()
	if !force && now.Sub(t.last) < t.every {
		return
	}
	t.last = now
	p := t.p
	// Hold cbMu before releasing mu so reports are delivered in order.
	t.cbMu.Lock()
	t.mu.Unlock()
	panicked, stack := t.call(p)
	t.mu.Lock()
	if panicked != nil {
		// Most reports come from the operation's goroutines, where a panic
		// would end the program, and some from its cleanup: the callback
		// is called no more and the operation goes on.
		t.fn = nil
		if t.log != nil {
			t.log.Warn("the progress callback panicked; it is not called again", "panic", panicked, "stack", string(stack))
		}
	}
}

// call calls fn with p under cbMu (held by the caller, released here) and
// returns what fn panicked with, and where.
func (t *tracker) call(p Progress) (panicked any, stack []byte) {
	defer func() {
		if v := recover(); v != nil {
			panicked, stack = v, debug.Stack()
		}
		t.cbMu.Unlock()
	}()
	t.fn(p)
	return nil, nil
}

func (t *tracker) update(force bool, f func(p *Progress)) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f(&t.p)
	t.emitLocked(force)
}

// setFile moves the file state.
func (t *tracker) setFile(s FileState) {
	t.update(true, func(p *Progress) { p.File = s })
}

// setObject records the registered object.
func (t *tracker) setObject(bag chain.BagID, id chain.ObjectID, root cid.Cid) {
	t.update(true, func(p *Progress) { p.Bag, p.Object, p.ObjectKnown, p.Root = bag, id, true, root })
}

// setProviders records how many providers are in use.
func (t *tracker) setProviders(n int) {
	t.update(true, func(p *Progress) { p.Providers = n })
}

// startChunks sets up chunk tracking: sizes of every chunk, and how many
// receipts each needs. Receipts already held are added with resumed.
func (t *tracker) startChunks(sizes []int32, total int64, want int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.size = sizes
	t.held = make([]uint8, len(sizes))
	t.started = make([]bool, len(sizes))
	t.want = want
	t.p.TotalBytes, t.p.Bytes = total, 0
	t.p.TotalChunks, t.p.Chunks = len(sizes), 0
	t.p.ChunkStates = [numChunkStates]int{len(sizes), 0, 0}
	t.emitLocked(true)
}

// setWant changes how many receipts a chunk needs (a provider was lost and
// no other can replace it), re-counting which chunks are uploaded.
func (t *tracker) setWant(want int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if want == t.want {
		return
	}
	t.want = want
	t.p.ChunkStates = [numChunkStates]int{}
	t.p.Chunks, t.p.Bytes = 0, 0
	for i := range t.held {
		s := t.chunkState(i)
		t.p.ChunkStates[s]++
		if s == ChunkUploaded {
			t.p.Chunks++
			t.p.Bytes += int64(t.size[i])
		}
	}
	t.emitLocked(true)
}

func (t *tracker) chunkState(i int) ChunkState {
	switch h := int(t.held[i]); {
	case h >= t.want && t.want > 0:
		return ChunkUploaded
	case h > 0 || t.started[i]:
		return ChunkUploading
	}
	return ChunkCreated
}

// receipt records one more receipt for chunk i; resumed marks receipts
// loaded from an earlier run.
func (t *tracker) receipt(i int, resumed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.held) {
		return
	}
	before := t.chunkState(i)
	if t.held[i] < 255 {
		t.held[i]++
	}
	after := t.chunkState(i)
	if before != after {
		t.p.ChunkStates[before]--
		t.p.ChunkStates[after]++
		if after == ChunkUploaded {
			t.p.Chunks++
			t.p.Bytes += int64(t.size[i])
			if resumed {
				t.p.Resumed++
			}
		}
	}
	t.emitLocked(!resumed && before != after)
}

// chunkStarted marks chunk i as uploading: a storage link to it was
// created.
func (t *tracker) chunkStarted(i int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if i < 0 || i >= len(t.held) || t.started[i] {
		return
	}
	before := t.chunkState(i)
	t.started[i] = true
	if after := t.chunkState(i); after != before {
		t.p.ChunkStates[before]--
		t.p.ChunkStates[after]++
	}
}

// link moves one storage link from one state to another. from < 0 creates
// a link.
func (t *tracker) link(from, to LinkState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if from >= 0 {
		t.p.Links[from]--
	}
	t.p.Links[to]++
	t.emitLocked(to == LinkFailed)
}

// sent counts chunk bytes that reached a provider.
func (t *tracker) sent(n int64) {
	t.mu.Lock()
	t.p.Sent += n
	t.mu.Unlock()
}

// fetched counts a downloaded chunk written to the destination.
func (t *tracker) fetched(n int64) {
	t.update(false, func(p *Progress) { p.Bytes += n; p.Chunks++ })
}

// setTotals sets the download's totals.
func (t *tracker) setTotals(bytes int64, chunks int) {
	t.update(true, func(p *Progress) { p.TotalBytes, p.TotalChunks = bytes, chunks })
}

// flush reports the current state unconditionally.
func (t *tracker) flush() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.emitLocked(true)
}
