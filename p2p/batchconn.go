package p2p

import (
	"context"
	"net"
	"sync"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
)

// Sizes of the batching buffers. Both come from pools and are held only
// while bytes are in flight, so an idle connection holds neither.
const (
	// batchReadSize is what one read(2) may fetch while a connection is
	// streaming: 16 TLS records.
	batchReadSize = 256 << 10
	// batchWriteSize is how many bytes of records one secure Write gathers
	// before it writes them: a 256 KiB yamux message in TLS records with
	// room to spare.
	batchWriteSize = 320 << 10
)

var (
	batchReadPool  = sync.Pool{New: func() any { b := make([]byte, batchReadSize); return &b }}
	batchWritePool = sync.Pool{New: func() any { b := make([]byte, 0, batchWriteSize); return &b }}
)

// BatchedTransport is a libp2p security transport that runs another one
// (TLS or Noise, unchanged on the wire) over a connection that batches
// socket calls: the records one Write of the secure connection produces go
// out in one write(2) when that Write returns, instead of one write(2) per
// record (crypto/tls writes each 16 KiB record on its own), and while the
// peer streams, one read(2) fetches up to 256 KiB for the records that
// follow instead of about one record. Writes outside a Write of the secure
// connection (the handshake, alerts, close_notify) go out at once, after
// anything gathered before them.
type BatchedTransport struct {
	inner sec.SecureTransport
}

var _ sec.SecureTransport = (*BatchedTransport)(nil)

// NewBatchedTransport wraps a security transport so its connections batch
// socket calls. The wrapped transport's protocol ID is kept: a peer sees
// the same protocol, batched or not.
func NewBatchedTransport(inner sec.SecureTransport) *BatchedTransport {
	return &BatchedTransport{inner: inner}
}

// BatchedTLS is a libp2p.Security constructor: libp2p's TLS 1.3 transport
// with batched socket calls.
//
//	libp2p.Security(libp2ptls.ID, p2p.BatchedTLS)
func BatchedTLS(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*BatchedTransport, error) {
	t, err := libp2ptls.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return NewBatchedTransport(t), nil
}

// BatchedNoise is a libp2p.Security constructor: libp2p's Noise transport
// with batched socket calls.
//
//	libp2p.Security(noise.ID, p2p.BatchedNoise)
func BatchedNoise(id protocol.ID, key crypto.PrivKey, muxers []tptu.StreamMuxer) (*BatchedTransport, error) {
	t, err := noise.New(id, key, muxers)
	if err != nil {
		return nil, err
	}
	return NewBatchedTransport(t), nil
}

// ID returns the wrapped transport's protocol ID.
func (t *BatchedTransport) ID() protocol.ID { return t.inner.ID() }

// SecureInbound runs the wrapped transport's handshake as the server over a
// batching connection.
func (t *BatchedTransport) SecureInbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	bc := newBatchConn(insecure)
	sc, err := t.inner.SecureInbound(ctx, bc, p)
	if err != nil {
		return nil, err
	}
	return &batchedSecureConn{SecureConn: sc, bc: bc}, nil
}

// SecureOutbound runs the wrapped transport's handshake as the client over
// a batching connection.
func (t *BatchedTransport) SecureOutbound(ctx context.Context, insecure net.Conn, p peer.ID) (sec.SecureConn, error) {
	bc := newBatchConn(insecure)
	sc, err := t.inner.SecureOutbound(ctx, bc, p)
	if err != nil {
		return nil, err
	}
	return &batchedSecureConn{SecureConn: sc, bc: bc}, nil
}

// batchedSecureConn is a secure connection whose Write gathers the records
// it produces and writes them in one go when it returns.
type batchedSecureConn struct {
	sec.SecureConn
	bc *batchConn
}

// Write encrypts p and writes its records with as few socket writes as the
// write buffer allows.
func (c *batchedSecureConn) Write(p []byte) (int, error) {
	c.bc.gather()
	n, err := c.SecureConn.Write(p)
	if ferr := c.bc.release(); err == nil && ferr != nil {
		err = ferr
	}
	return n, err
}

// batchConn is the insecure connection under a batched secure one.
//
// Reads: the security transport reads from one goroutine at a time (TLS
// and Noise both lock their read side). A read that filled the caller's
// buffer means more was waiting on the socket, so the next read fetches up
// to batchReadSize into a pooled buffer and serves the following reads
// from it; once a read returns no more than was asked, reads go straight
// to the socket again and the buffer goes back to the pool. A connection
// that falls idle right after streaming may wait in read(2) holding its
// buffer, until the next message (at the latest yamux's keepalive ping,
// every 30 s) ends bulk reading.
//
// Writes: between gather and release (a Write of the secure connection),
// writes are appended to a pooled buffer, which is written when the last
// gathering Write returns or when it is full. Other writes first write
// what is gathered, then themselves, so bytes keep their order.
type batchConn struct {
	net.Conn

	// Read side, owned by the one reading goroutine.
	rbuf  *[]byte // pooled, nil when reading straight from the socket
	rdata []byte  // unread bytes in rbuf
	rerr  error   // the error of the read that filled rbuf, due once it is drained
	bulk  bool    // the last socket read filled what it was given

	// Write side.
	mu        sync.Mutex
	gathering int     // secure Writes in progress
	wbuf      *[]byte // pooled, nil when nothing is gathered
	werr      error   // the first failed socket write; the connection is broken
}

func newBatchConn(c net.Conn) *batchConn { return &batchConn{Conn: c} }

// Read reads from the read buffer, or from the socket.
func (c *batchConn) Read(p []byte) (int, error) {
	if len(c.rdata) > 0 {
		n := copy(p, c.rdata)
		c.rdata = c.rdata[n:]
		if len(c.rdata) > 0 {
			return n, nil
		}
		err := c.rerr
		c.dropReadBuffer()
		return n, err
	}
	if !c.bulk || len(p) >= batchReadSize {
		n, err := c.Conn.Read(p)
		c.bulk = n == len(p) && n > 0
		return n, err
	}
	c.rbuf = batchReadPool.Get().(*[]byte)
	n, err := c.Conn.Read(*c.rbuf)
	c.bulk = n > len(p)
	c.rdata = (*c.rbuf)[:n]
	m := copy(p, c.rdata)
	c.rdata = c.rdata[m:]
	if len(c.rdata) > 0 {
		c.rerr = err
		return m, nil
	}
	c.dropReadBuffer()
	return m, err
}

func (c *batchConn) dropReadBuffer() {
	batchReadPool.Put(c.rbuf)
	c.rbuf, c.rdata, c.rerr = nil, nil, nil
}

// gather starts gathering writes: a secure Write begins.
func (c *batchConn) gather() {
	c.mu.Lock()
	c.gathering++
	c.mu.Unlock()
}

// release ends a gather; the last one writes what was gathered.
func (c *batchConn) release() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gathering--
	if c.gathering > 0 {
		return c.werr
	}
	return c.flushLocked()
}

// Write gathers p while a secure Write runs, else writes it after what was
// gathered.
func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.werr != nil {
		return 0, c.werr
	}
	if c.gathering > 0 {
		if c.wbuf != nil && len(*c.wbuf)+len(p) > batchWriteSize {
			if err := c.flushLocked(); err != nil {
				return 0, err
			}
		}
		if len(p) <= batchWriteSize {
			if c.wbuf == nil {
				c.wbuf = batchWritePool.Get().(*[]byte)
			}
			*c.wbuf = append(*c.wbuf, p...)
			return len(p), nil
		}
	} else if err := c.flushLocked(); err != nil {
		return 0, err
	}
	n, err := c.Conn.Write(p)
	if err != nil {
		c.werr = err
	}
	return n, err
}

// flushLocked writes what was gathered. c.mu is held.
func (c *batchConn) flushLocked() error {
	if c.wbuf == nil {
		return c.werr
	}
	b := c.wbuf
	c.wbuf = nil
	if c.werr == nil {
		if _, err := c.Conn.Write(*b); err != nil {
			c.werr = err
		}
	}
	*b = (*b)[:0]
	batchWritePool.Put(b)
	return c.werr
}

// Close writes what was gathered (a close_notify alert, say) unless a
// write is in progress, then closes the socket, which also ends a write
// stuck on a stalled peer.
func (c *batchConn) Close() error {
	if c.mu.TryLock() {
		_ = c.flushLocked()
		c.mu.Unlock()
	}
	return c.Conn.Close()
}
