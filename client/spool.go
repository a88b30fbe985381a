package client

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/satchel-net/satchel/chain"
)

// A stream of unknown size cannot be offered a storage contract (a
// proposal names the size), and providers take chunks of an unregistered
// object only under a consigned contract. So Upload spools the stream to a
// temporary file as it is written; Commit then uploads the file like
// PutFile: contracts first when the put asks for them, else the object is
// registered first and its chunks pushed with their proofs. The spool is
// removed when Commit or Abort returns.

// spool is the temporary file a streamed upload is written to.
type spool struct {
	f    *os.File
	size int64
}

// newSpooled starts a streamed upload to bag that spools to a temporary
// file; it checks up front what the chain would refuse.
func (c *Client) newSpooled(ctx context.Context, bag chain.BagID, o putOptions) (_ *Upload, err error) {
	if err := c.begin(); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.end()
		}
	}()
	params, err := c.precheck(ctx, bag, -1)
	if err != nil {
		return nil, err
	}
	b, err := c.chain.Bag(ctx, bag)
	if err != nil {
		return nil, explainChain("upload", bag, err)
	}
	// What Commit would refuse of the copies asked, refused now.
	if _, err := o.copies(bag, len(b.StorageBuckets)); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp("", "satchel-upload-*")
	if err != nil {
		return nil, fmt.Errorf("client: spool the upload: %w; set TMPDIR to a directory with room", err)
	}
	uctx, cancel := context.WithCancel(ctx)
	c.log.Debug("streamed upload spooled", "bag", bag, "file", f.Name())
	u := &Upload{c: c, ctx: uctx, cancel: cancel, bag: bag, o: o, params: params, spool: &spool{f: f}}
	// The spool's own progress: bytes written so far (Commit's upload
	// reports the rest, with a tracker of its own).
	u.tr = newTracker(OpPut, o.progress, c.progressEvery)
	u.tr.log = c.log
	u.tr.update(true, func(p *Progress) { p.Bag, p.File = bag, FileCreated })
	return u, nil
}

// write appends p to the spool, refusing a stream past the chain's maximum
// object size.
func (s *spool) write(u *Upload, p []byte) (int, error) {
	if err := u.ctx.Err(); err != nil {
		return 0, u.fail(err)
	}
	if max := u.params.Limits.MaxDataObjectSize; uint64(s.size)+uint64(len(p)) > max {
		return 0, u.fail(chain.Errorf(chain.ErrObjectTooLarge, "upload to bag %s: the stream is larger than the max data object size of %d bytes; ask the storage lead to raise it with `satchel storage leader set-max-object-size`", u.bag, max))
	}
	n, err := s.f.Write(p)
	first := s.size == 0 && n > 0
	s.size += int64(n)
	// The first bytes are reported at once, the rest at most every
	// progress interval: a large stream shows progress before Commit.
	u.tr.update(first, func(p *Progress) { p.Bytes = s.size })
	if err != nil {
		return n, u.fail(fmt.Errorf("client: spool the upload: %w", err))
	}
	return n, nil
}

// readFrom spools everything r yields until io.EOF.
func (s *spool) readFrom(u *Upload, r io.Reader) (int64, error) {
	buf := make([]byte, 256<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			m, werr := s.write(u, buf[:n])
			total += int64(m)
			if werr != nil {
				return total, werr
			}
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, u.fail(err)
		}
	}
}

// commit uploads the spooled stream as a file and removes the spool.
func (s *spool) commit(u *Upload) (Object, error) {
	defer s.discard(u)
	u.tr.flush() // every byte spooled, before the upload reports its own
	if s.size == 0 {
		u.tr.setFile(FileFailed)
		return Object{}, ErrEmpty
	}
	return u.c.putAt(u.ctx, u.bag, s.f, s.size, u.o)
}

// discard removes the spool and releases the upload, once.
func (s *spool) discard(u *Upload) {
	if s.f == nil {
		return
	}
	name := s.f.Name()
	_ = s.f.Close()
	_ = os.Remove(name)
	s.f = nil
	u.cancel()
	u.c.end()
}
