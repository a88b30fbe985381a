package p2p

import "sync"

// Frame bodies a FrameReader reads whole (WholeFrames, ReserveFrames) come
// from a pool of buffers in frameClass steps, and RecycleFrame hands one
// back. The reason is the kernel, not the allocator: a fresh 1 MiB body
// lands on pages the Go runtime had returned to the OS, and faulting them
// in again cost more CPU than decrypting the bytes (on the 2-core VMs a
// store push spent 45 % of its CPU in the copy into fresh bodies, one page
// fault per 4 KiB). A reused buffer is already mapped.
const (
	// frameClass is the pool's size step: a body of n bytes takes a buffer
	// of n rounded up to it, so a 1 MiB chunk's frame wastes < 64 KiB.
	frameClass = 64 << 10
	// maxPooledFrame is the largest body the pool keeps; larger ones are
	// allocated and left to the collector.
	maxPooledFrame = DefaultMaxFrame + frameClass
)

// framePools holds one pool per size class; class i holds buffers of
// (i+1)*frameClass bytes. A sync.Pool lets the collector take buffers
// nobody reuses, so the pool never pins memory a quiet node does not need.
var framePools [(maxPooledFrame + frameClass - 1) / frameClass]sync.Pool

// frameBuf returns a buffer of n bytes, from the pool when n is in its
// range. Its contents are undefined: the caller overwrites all of it.
func frameBuf(n int) []byte {
	if n < frameClass || n > maxPooledFrame {
		return make([]byte, n)
	}
	class := (n + frameClass - 1) / frameClass
	if b, ok := framePools[class-1].Get().(*[]byte); ok {
		return (*b)[:n]
	}
	return make([]byte, n, class*frameClass)
}

// RecycleFrame hands back a frame body a FrameReader returned, for a later
// frame to reuse. Pass exactly the body ReadFrame returned, once, and only
// when nothing refers to it or any part of it any more (a later frame will
// overwrite the bytes). Slices whose capacity is not a multiple of the
// pool's size step (most buffers of other origin, and most sub-slices) are
// ignored; the pool cannot tell other slices from its own, so never pass a
// body twice or a slice still in use elsewhere.
func RecycleFrame(body []byte) {
	c := cap(body)
	if c < frameClass || c > maxPooledFrame || c%frameClass != 0 {
		return
	}
	body = body[:c]
	framePools[c/frameClass-1].Put(&body)
}
