package provider

import (
	"sync"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/internal/fsutil"
	"github.com/satchel-net/satchel/internal/units"
	"github.com/satchel-net/satchel/protocol/store"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// DiskStatus is the file system holding the block store, in the status.
type DiskStatus struct {
	// Free is the bytes the node may still write; Used those the file
	// system has in use (by this node or anything else).
	Free uint64 `json:"freeBytes"`
	Used uint64 `json:"usedBytes"`
}

// diskStatus reads the block store's file system, or nil where it cannot.
func (s *Server) diskStatus() *DiskStatus {
	u, err := diskUsageOf(s.bs)
	if err != nil {
		return nil
	}
	return &u
}

// noSpaceWarnEvery spaces the warnings of a full disk: an upload fails on
// every chunk it sends, and one line a minute says what to do.
const noSpaceWarnEvery = time.Minute

// noSpace notes a block store write that failed for lack of disk space:
// counted, and logged at Warn with the fix, at most once a minute. The
// uploader sees only that its write failed, and the operator would
// otherwise see nothing at all. Other errors are left alone.
type noSpace struct {
	s    *Server
	mu   sync.Mutex
	last time.Time
}

// note returns err after noting it if it is a full disk, then as a
// noSpaceErr, which the store handler answers with no_space set; op says
// what was being written (upload, sync, repair). A nil n (a Server built in
// a test without New) notes nothing.
func (n *noSpace) note(op string, err error) error {
	if err == nil || !fsutil.NoSpace(err) {
		return err
	}
	err = noSpaceErr{err}
	if n == nil {
		return err
	}
	n.s.m.noSpaceWrites.WithLabelValues(op).Inc()
	n.mu.Lock()
	warn := time.Since(n.last) >= noSpaceWarnEvery
	if warn {
		n.last = time.Now()
	}
	n.mu.Unlock()
	if warn {
		args := []any{"op", op, "dir", n.s.bs.Dir(), "err", err,
			"fix", "free disk space on the block store's file system, or have the storage lead lower the bucket's size limit " +
				"(satchel storage leader set-bucket-limits -i BUCKET -s SIZE) or stop new bags (update-bucket-status -i BUCKET -a no)"}
		if d := n.s.diskStatus(); d != nil {
			args = append(args, "free", units.FormatBytes(d.Free))
		}
		n.s.log.Warn("block store write failed: the disk is full", args...)
	}
	return err
}

// noSpaceErr is a block store write that failed for lack of disk space:
// its text is the store's, and it matches store.ErrNoSpace, whatever words
// the system's error uses.
type noSpaceErr struct{ error }

// Unwrap returns the store's error.
func (e noSpaceErr) Unwrap() error { return e.error }

// Is reports whether target is store.ErrNoSpace.
func (e noSpaceErr) Is(target error) bool { return target == store.ErrNoSpace }

// diskFullBlocks is the block store as the store protocol writes to it,
// noting a full disk (noSpace) and telling the contract grants of each
// chunk of an upload session that landed (landed, contracts.go). It embeds the store's adapter, so the
// optional interfaces the handler looks for (store.VerifiedPutter,
// store.BlockReader) stay.
type diskFullBlocks struct {
	blockstore.ProtocolBlocks
	n *noSpace
}

// PutInSession implements store.Blocks.
func (b diskFullBlocks) PutInSession(s store.Session, c cid.Cid, data []byte) error {
	return b.landed(s, b.n.note("upload", b.ProtocolBlocks.PutInSession(s, c, data)))
}

// PutVerifiedInSession implements store.VerifiedPutter.
func (b diskFullBlocks) PutVerifiedInSession(s store.Session, c cid.Cid, data []byte) error {
	return b.landed(s, b.n.note("upload", b.ProtocolBlocks.PutVerifiedInSession(s, c, data)))
}

// PutObject implements store.Blocks.
func (b diskFullBlocks) PutObject(o store.Object) error {
	return b.n.note("upload", b.ProtocolBlocks.PutObject(o))
}
