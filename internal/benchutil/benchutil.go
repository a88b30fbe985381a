// Package benchutil holds what Satchel's benchmarks share: the ceilings
// they measure in the same run (a plain libp2p stream between the same
// hosts), CPU time, and where their stores live.
package benchutil

import (
	"context"
	"io"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
)

// RawProtocol is the plain stream protocol Hosts' second host sinks:
// RawCopy's far end.
const RawProtocol = "/satchel/bench/raw/1.0.0"

// Hosts returns two loopback TCP hosts; the second sinks RawProtocol
// streams.
func Hosts(b testing.TB) (client, server *p2p.Host) {
	net := testnet.New(b, 2, testnet.WithHostOptions(func(int) []p2p.Option {
		return []p2p.Option{p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0")}
	}))
	client, server = net.Host(0), net.Host(1)
	server.Libp2p().SetStreamHandler(RawProtocol, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_, _ = s.Write([]byte{1})
		_ = s.Close()
	})
	return client, server
}

// RawCopy copies data to p over a fresh plain stream in 1 MiB writes and
// returns the time until p acknowledged the last byte: the ceiling a
// protocol moving the same bytes is measured against.
func RawCopy(b testing.TB, client host.Host, p peer.ID, data []byte) time.Duration {
	start := time.Now()
	s, err := client.NewStream(context.Background(), p, RawProtocol)
	if err != nil {
		b.Fatal(err)
	}
	for off := 0; off < len(data); off += 1 << 20 {
		if _, err := s.Write(data[off:min(off+1<<20, len(data))]); err != nil {
			b.Fatal(err)
		}
	}
	_ = s.CloseWrite()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
	return time.Since(start)
}

// Dir is a benchmark's store directory: SATCHEL_BENCH_DIR if set (for
// example a tmpfs, to take the disk out of the measurement), else a temp
// dir.
func Dir(b testing.TB) string {
	if d := os.Getenv("SATCHEL_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// Rand returns n pseudo-random bytes determined by seed.
func Rand(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]byte, n)
	for i := range out {
		out[i] = byte(r.Uint32())
	}
	return out
}
