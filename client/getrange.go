package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ipfs/go-cid"
)

// rangeWrite is one writeRange at work: walk lists the range's chunks in
// order, fetch (window of them) reads them, emit writes them in order.
type rangeWrite struct {
	r        *Reader
	tr       *tracker
	ctx      context.Context // ends when any of the three fails
	off, end int64
	w        io.Writer
	keep     func(l leaf, data []byte)
	ordered  chan *fetchJob // every chunk, in order (emit)
	work     chan *fetchJob // the chunks to fetch (fetch)
	written  int64          // emit's alone until the group returns
}

// walk walks the DAG over the range and hands each chunk to emit, and
// those not already in hand to fetch.
func (rw *rangeWrite) walk() error {
	defer close(rw.ordered)
	defer close(rw.work)
	r := rw.r
	wk := &walker{get: func(ctx context.Context, c cid.Cid) ([]byte, error) { return r.srcs.get(ctx, c, 8<<10) }}
	var leaves, estimate int // chunks walked, and the count first reported
	err := wk.walk(rw.ctx, r.root, r.block, 0, r.size, rw.off, rw.end, 0, func(l leaf) error {
		if leaves++; leaves == 1 {
			estimate = leafEstimate(l, rw.end)
			rw.tr.setTotals(rw.end-rw.off, estimate)
		}
		j := &fetchJob{leaf: l, done: make(chan struct{})}
		if l.inline || (l.cid.Equals(r.root) && r.root.Type() == cid.Raw) {
			if l.inline {
				j.data = l.data
			} else {
				j.data = r.block
			}
			close(j.done)
		} else if err := sendJob(rw.ctx, rw.work, j); err != nil {
			return err
		}
		return sendJob(rw.ctx, rw.ordered, j)
	})
	if err == nil && leaves != estimate {
		rw.tr.setTotals(rw.end-rw.off, leaves) // a DAG of uneven chunks
	}
	return err
}

// sendJob hands j to ch unless ctx ends first.
func sendJob(ctx context.Context, ch chan<- *fetchJob, j *fetchJob) error {
	select {
	case ch <- j:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fetch reads the chunks walk hands it, checking each one's size.
func (rw *rangeWrite) fetch() error {
	for j := range rw.work {
		j.blk, j.err = rw.r.srcs.read(rw.ctx, j.leaf.cid, j.leaf.size)
		j.data = j.blk.Data
		if j.err == nil && int64(len(j.data)) != j.leaf.size {
			j.err = fmt.Errorf("block %s holds %d bytes, its parent says %d", j.leaf.cid, len(j.data), j.leaf.size)
		}
		close(j.done)
		if j.err != nil {
			return j.err
		}
	}
	return nil
}

// emit writes each chunk's part of the range to w, in order, as it arrives.
func (rw *rangeWrite) emit() error {
	for j := range rw.ordered {
		select {
		case <-j.done:
		case <-rw.ctx.Done():
			return rw.ctx.Err()
		}
		if j.err != nil {
			return j.err
		}
		lo := max(rw.off-j.leaf.off, 0)
		hi := min(rw.end-j.leaf.off, int64(len(j.data)))
		if lo < hi {
			m, err := callerWrite(rw.w, j.data[lo:hi])
			rw.written += int64(m)
			var pe *PanicError
			if errors.As(err, &pe) {
				rw.r.c.log.Warn("the writer given to a download panicked; the download fails with the panic", "object", rw.r.ref, "panic", pe.Value, "stack", string(pe.Stack))
			}
			if err != nil {
				return err
			}
			rw.tr.fetched(int64(m))
		}
		if rw.keep != nil {
			rw.keep(j.leaf, j.data)
		}
		// w.Write keeps nothing of what it was given (io.Writer).
		j.data = nil
		j.blk.Release()
	}
	if rw.written != rw.end-rw.off {
		return fmt.Errorf("DAG of %s covers %d of the %d bytes asked", rw.r.root, rw.written, rw.end-rw.off)
	}
	return nil
}
