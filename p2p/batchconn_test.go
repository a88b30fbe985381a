package p2p_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/core/sec"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	tptu "github.com/libp2p/go-libp2p/p2p/net/upgrader"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/satchel-net/satchel/p2p"
)

const batchEchoProtocol = "/satchel/test/echo/1.0.0"

// TestBatchedStreamsExact sends streams of random sizes, written in random
// pieces, both ways between a default host (batched TLS and Noise) and a
// peer: another default host (batched TLS both ends), a plain libp2p host
// speaking only TLS, and one speaking only Noise. Many streams run at once
// on the one connection; every byte must come back as sent.
func TestBatchedStreamsExact(t *testing.T) {
	peers := []struct {
		name     string
		security protocol.ID
		peer     func(t *testing.T) host.Host
	}{
		{"batched-tls", libp2ptls.ID, func(t *testing.T) host.Host { return newHost(t).Libp2p() }},
		{"plain-tls", libp2ptls.ID, func(t *testing.T) host.Host {
			return plainHost(t, libp2p.Security(libp2ptls.ID, libp2ptls.New))
		}},
		{"plain-noise", noise.ID, func(t *testing.T) host.Host {
			return plainHost(t, libp2p.Security(noise.ID, noise.New))
		}},
	}
	for _, pc := range peers {
		t.Run(pc.name, func(t *testing.T) {
			local := newHost(t).Libp2p()
			remote := pc.peer(t)
			for _, h := range []host.Host{local, remote} {
				h.SetStreamHandler(batchEchoProtocol, func(s network.Stream) {
					_, _ = io.Copy(s, s)
					_ = s.Close()
				})
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := local.Connect(ctx, peer.AddrInfo{ID: remote.ID(), Addrs: remote.Addrs()}); err != nil {
				t.Fatal(err)
			}
			conns := local.Network().ConnsToPeer(remote.ID())
			if len(conns) != 1 || conns[0].ConnState().Security != pc.security {
				t.Fatalf("connections %v, want one secured by %s", conns, pc.security)
			}

			var wg sync.WaitGroup
			for i := range 24 {
				from, to := local, remote
				if i%2 == 1 {
					from, to = remote, local
				}
				size := mrand.IntN(3 << 20)
				if i < 3 {
					size = []int{0, 1, 16<<10 + 5}[i]
				}
				wg.Go(func() { echoExact(t, ctx, from, to.ID(), size) })
			}
			wg.Wait()
		})
	}
}

// echoExact sends size random bytes in random pieces to p's echo handler
// and checks what comes back.
func echoExact(t *testing.T, ctx context.Context, from host.Host, p peer.ID, size int) {
	sent := make([]byte, size)
	_, _ = rand.Read(sent)
	s, err := from.NewStream(ctx, p, batchEchoProtocol)
	if err != nil {
		t.Error(err)
		return
	}
	defer s.Close()
	_ = s.SetDeadline(time.Now().Add(time.Minute))
	werr := make(chan error, 1)
	go func() {
		rest := sent
		for len(rest) > 0 {
			n := min(len(rest), 1+mrand.IntN(300<<10))
			if _, err := s.Write(rest[:n]); err != nil {
				werr <- err
				return
			}
			rest = rest[n:]
		}
		werr <- s.CloseWrite()
	}()
	got, err := io.ReadAll(s)
	if err != nil {
		t.Errorf("stream of %d bytes: read: %v", size, err)
		return
	}
	if err := <-werr; err != nil {
		t.Errorf("stream of %d bytes: write: %v", size, err)
	}
	if !bytes.Equal(got, sent) {
		t.Errorf("stream of %d bytes: got %d bytes back, not the same", size, len(got))
	}
}

// plainHost starts a loopback TCP libp2p host with the one given security
// transport, unbatched.
func plainHost(t *testing.T, security libp2p.Option) host.Host {
	h, err := libp2p.New(
		libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
		libp2p.Transport(tcp.NewTCPTransport),
		security,
		libp2p.Muxer(yamux.ID, yamux.DefaultTransport),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// newHost starts a default host on loopback TCP.
func newHost(t *testing.T) *p2p.Host {
	h, err := p2p.New(context.Background(), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	return h
}

// securedPair runs a batched transport's handshake over a loopback TCP
// connection: client is the batched side, server the plain one.
func securedPair(t *testing.T, batched func(protocol.ID, crypto.PrivKey, []tptu.StreamMuxer) (*p2p.BatchedTransport, error),
	plain func(crypto.PrivKey) (sec.SecureTransport, error), id protocol.ID) (client, server sec.SecureConn) {
	t.Helper()
	ckey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	skey, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	ct, err := batched(id, ckey, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := plain(skey)
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := peer.IDFromPrivateKey(skey)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	type result struct {
		c   sec.SecureConn
		err error
	}
	accepted := make(chan result, 1)
	go func() {
		raw, err := l.Accept()
		if err != nil {
			accepted <- result{err: err}
			return
		}
		sc, err := st.SecureInbound(ctx, raw, "")
		accepted <- result{sc, err}
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client, err = ct.SecureOutbound(ctx, raw, sid)
	if err != nil {
		t.Fatal(err)
	}
	r := <-accepted
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { _ = client.Close(); _ = r.c.Close() })
	return client, r.c
}

var transportCases = []struct {
	name    string
	id      protocol.ID
	batched func(protocol.ID, crypto.PrivKey, []tptu.StreamMuxer) (*p2p.BatchedTransport, error)
	plain   func(crypto.PrivKey) (sec.SecureTransport, error)
}{
	{"tls", libp2ptls.ID, p2p.BatchedTLS, func(k crypto.PrivKey) (sec.SecureTransport, error) {
		return libp2ptls.New(libp2ptls.ID, k, nil)
	}},
	{"noise", noise.ID, p2p.BatchedNoise, func(k crypto.PrivKey) (sec.SecureTransport, error) {
		return noise.New(noise.ID, k, nil)
	}},
}

// TestBatchedDeadlines: a write to a peer that stops reading ends at its
// write deadline with a timeout, and so does a read from a silent peer;
// after a read timed out, the connection still reads what comes next.
func TestBatchedDeadlines(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			client, server := securedPair(t, tc.batched, tc.plain, tc.id)

			// Read deadline on a silent peer, then data after it.
			_ = client.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
			if _, err := client.Read(make([]byte, 10)); !isTimeout(err) {
				t.Fatalf("read from a silent peer: %v, want a timeout", err)
			}
			_ = client.SetReadDeadline(time.Time{})
			go func() { _, _ = server.Write([]byte("after")) }()
			buf := make([]byte, 5)
			if _, err := io.ReadFull(client, buf); err != nil || string(buf) != "after" {
				t.Fatalf("read after a timeout: %q, %v", buf, err)
			}

			// Write deadline on a peer that does not read: the socket
			// buffers fill and the gathered write blocks until the
			// deadline.
			_ = client.SetWriteDeadline(time.Now().Add(500 * time.Millisecond))
			chunk := make([]byte, 1<<20)
			done := make(chan error, 1)
			go func() {
				for {
					if _, err := client.Write(chunk); err != nil {
						done <- err
						return
					}
				}
			}()
			select {
			case err := <-done:
				if !isTimeout(err) {
					t.Fatalf("write to a stalled peer: %v, want a timeout", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("write to a stalled peer did not end at its deadline")
			}
			// The connection is broken for writing now: it stays so.
			if _, err := client.Write([]byte("x")); err == nil {
				t.Fatal("write after a failed write succeeded")
			}
		})
	}
}

// TestBatchedClose: closing the batched side ends the peer's read at once,
// cleanly for TLS (the close_notify alert got out); closing the peer ends
// the batched side's read.
func TestBatchedClose(t *testing.T) {
	for _, tc := range transportCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, batchedCloses := range []bool{true, false} {
				client, server := securedPair(t, tc.batched, tc.plain, tc.id)
				closer, reader := client, server
				if !batchedCloses {
					closer, reader = server, client
				}
				if _, err := closer.Write([]byte("last words")); err != nil {
					t.Fatal(err)
				}
				_ = reader.SetReadDeadline(time.Now().Add(20 * time.Second))
				buf := make([]byte, 10)
				if _, err := io.ReadFull(reader, buf); err != nil || string(buf) != "last words" {
					t.Fatalf("read before close: %q, %v", buf, err)
				}
				if err := closer.Close(); err != nil {
					t.Fatal(err)
				}
				// ReadFull: Noise may first return (0, nil) after a
				// message it had to queue.
				_, err := io.ReadFull(reader, buf[:1])
				if err == nil || isTimeout(err) {
					t.Fatalf("read after the peer closed: %v, want the end of the connection", err)
				}
				if tc.name == "tls" && !errors.Is(err, io.EOF) {
					t.Fatalf("TLS read after the peer closed: %v, want io.EOF (close_notify)", err)
				}
			}
		})
	}
}

// TestBatchedStreamReset: a reset or closed stream, and a closed
// connection, end the other side's read promptly over the batched
// transport.
func TestBatchedStreamReset(t *testing.T) {
	a, b := newHost(t).Libp2p(), newHost(t).Libp2p()
	accepted := make(chan network.Stream, 2)
	b.SetStreamHandler(batchEchoProtocol, func(s network.Stream) { accepted <- s })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	open := func() (network.Stream, network.Stream) {
		s, err := a.NewStream(ctx, b.ID(), batchEchoProtocol)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		r := <-accepted
		_ = r.SetReadDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 2)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		return s, r
	}

	s, r := open()
	_ = s.Reset()
	if _, err := r.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read after the peer reset: %v, want a reset", err)
	}

	s, r = open()
	if err := a.Network().ClosePeer(b.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Fatalf("read after the peer closed the connection: %v, want an error", err)
	}
	_ = s.Close()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}
