package blockstore

import "sync"

// Staging buffers: where a record is assembled for its direct write. The
// kernel pins every page of a direct write's buffer for the I/O, and a
// buffer on 4 KiB pages costs it 256 pins per MiB: in a store push the
// pwrites took ~0.1 CPU second per GiB, half of it pinning. Where the
// system gives transparent huge pages on request (Linux, madvise), records
// of up to stagingHuge bytes (every 1 MiB chunk's) are staged in buffers
// each on one 2 MiB page instead, from a fixed set of stagingHugeBufs
// carved out of one mapping the first time one is needed, shared by every
// store of the process and kept for its life (at most stagingHugeBufs × 2
// MiB resident). When they are all in use, or the system has none (no
// transparent huge pages, or their setting is "never": madvise succeeds
// there, but would keep ordinary pages for nothing), a record is staged in
// an aligned buffer of the heap as before. The setting is read once, when
// the first buffer is needed.

// stagingHuge is the size of a huge staging buffer: one 2 MiB page.
const stagingHuge = 2 << 20

// stagingHugeBufs bounds the huge staging buffers: the records being
// written at once that use one.
const stagingHugeBufs = 16

// hugeStaging is the process's set of huge staging buffers.
var hugeStaging struct {
	once sync.Once
	free chan []byte // nil if the system gives none
}

// stagingBuf returns a buffer of n bytes (rounded up to ioAlign), aligned
// for direct I/O, and what hands it back once the write is done with it.
func (f *fileIO) stagingBuf(n int) (buf []byte, done func()) {
	if n <= stagingHuge {
		hugeStaging.once.Do(func() { hugeStaging.free = mapHugeBufs(stagingHugeBufs, stagingHuge) })
		select {
		case b := <-hugeStaging.free: // a nil channel is never ready
			return b[:roundUp(n)], func() { hugeStaging.free <- b }
		default:
		}
	}
	bp := f.alignedBuf(n)
	return *bp, func() { f.putBuf(bp) }
}
