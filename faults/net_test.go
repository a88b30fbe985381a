package faults

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/blocktest"
	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/provider/blockstore"
	"github.com/satchel-net/satchel/testnet"
)

// object is an acknowledged upload: its chain record and its bytes.
type object struct {
	obj  chain.DataObject
	data []byte
	res  *chunker.Result
	to   []int // the providers that acknowledged it; nil: all three
}

// holders are the providers that acknowledged o.
func (o object) holders() []int {
	if o.to == nil {
		return []int{0, 1, 2}
	}
	return o.to
}

// chunkSize keeps objects to a few chunks, so faults land inside uploads.
const chunkSize = 256 << 10

func randData(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// upload stores data on the providers to, acknowledged when it returns nil.
func upload(ctx context.Context, net *testnet.Network, data []byte, to ...int) (object, error) {
	res, err := chunker.Sum(ctx, bytes.NewReader(data), chunker.WithChunkSize(chunkSize))
	if err != nil {
		return object{}, err
	}
	obj, err := net.UploadChunked(ctx, data, chunkSize, to...)
	if err != nil {
		return object{}, err
	}
	return object{obj: obj, data: data, res: res}, nil
}

// readResult is what reading an object from one provider found.
type readResult int

const (
	readOK        readResult = iota
	readFailed               // an error: provider down, block being repaired
	readCorrupted            // bytes that are not the object's were served
)

// read reads every chunk of o from provider p through the fetch protocol.
// The fetch client verifies each block against its CID: a mismatch, or
// bytes that differ from what was uploaded, is a corrupted read.
// Every chunk is asked for, so every damaged one is found.
func read(ctx context.Context, fc *fetch.Client, p peer.ID, o object) readResult {
	out := readOK
	for _, c := range o.res.Chunks {
		got, err := fc.GetBlock(ctx, p, c.CID)
		switch {
		case errors.Is(err, fetch.ErrCIDMismatch):
			return readCorrupted
		case err != nil:
			out = readFailed
		case !bytes.Equal(got, o.data[c.Offset:c.Offset+int64(c.Size)]):
			return readCorrupted
		}
	}
	return out
}

// readBack reads o from provider p until a read succeeds or serves
// corrupted bytes, or a deadline passes: a failed read (a stream the fault
// broke, a block being repaired) is retried; what stays unreadable is lost.
// The reader connects to the provider's current addresses first (a
// restarted provider listens on a new port).
func readBack(ctx context.Context, h host.Host, fc *fetch.Client, p peer.AddrInfo, o object) readResult {
	res := readFailed
	waitFor(30*time.Second, func() bool {
		if err := h.Connect(ctx, p); err != nil {
			return false
		}
		res = read(ctx, fc, p.ID, o)
		return res != readFailed
	})
	return res
}

// waitFor polls cond every 20 ms until it holds or d passes, and reports
// how long it took and whether it held.
func waitFor(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Since(start) > d {
			return time.Since(start), false
		}
		<-tick.C
	}
	return time.Since(start), true
}

// flipBit flips a random bit of block c where bs keeps it (Store.Locate).
func flipBit(t *testing.T, bs *blockstore.Store, c cid.Cid, r *rand.Rand) {
	t.Helper()
	blocktest.Overwrite(t, bs, c, func(b []byte) { b[r.IntN(len(b))] ^= 1 << r.IntN(8) })
}
