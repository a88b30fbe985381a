package p2p_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"

	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/p2p"
)

const benchSinkProtocol = "/satchel/test/batch-sink/1.0.0"

// BenchmarkBatchedStream copies 256 MiB over one yamux stream between two
// loopback TCP hosts, for TLS and Noise, plain and batched (BatchedTLS,
// BatchedNoise), with yamux's 64 KiB messages and with 256 KiB ones. It
// reports MB/s and the CPU seconds both hosts spent per GiB; each
// variant's ratio_vs_plain compares its CPU per GiB to the plain
// transport's with 64 KiB messages, measured in the same run.
func BenchmarkBatchedStream(b *testing.B) {
	const total = 256 << 20
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	for _, sec := range []string{"tls", "noise"} {
		var plainCPU float64
		for _, msg := range []uint32{64 << 10, 256 << 10} {
			for _, batched := range []bool{false, true} {
				name := fmt.Sprintf("%s/msg=%dKiB/batched=%v", sec, msg>>10, batched)
				b.Run(name, func(b *testing.B) {
					client, server := benchPair(b, sec, batched, msg)
					b.SetBytes(total)
					var cpu float64
					var wall time.Duration
					b.ResetTimer()
					for range b.N {
						c0, t0 := benchutil.CPUSeconds(), time.Now()
						copyStream(b, client, server.ID(), data, total)
						wall += time.Since(t0)
						cpu += benchutil.CPUSeconds() - c0
					}
					gib := float64(b.N) * total / (1 << 30)
					b.ReportMetric(cpu/gib, "cpu_s/GiB")
					b.ReportMetric(float64(b.N)*total/1e6/wall.Seconds(), "stream_MB/s")
					if !batched && msg == 64<<10 {
						plainCPU = cpu / gib
					}
					if plainCPU > 0 {
						b.ReportMetric((cpu/gib)/plainCPU, "cpu_ratio_vs_plain")
					}
				})
			}
		}
	}
}

// benchPair starts two loopback TCP hosts speaking only sec, batched or
// not, with yamux messages up to msg bytes; the second sinks
// benchSinkProtocol streams.
func benchPair(b *testing.B, sec string, batched bool, msg uint32) (client, server host.Host) {
	b.Helper()
	mk := func() host.Host {
		cfg := *yamux.DefaultTransport.Config()
		cfg.MaxMessageSize = msg
		var secOpt libp2p.Option
		switch {
		case sec == "tls" && batched:
			secOpt = libp2p.Security(libp2ptls.ID, p2p.BatchedTLS)
		case sec == "tls":
			secOpt = libp2p.Security(libp2ptls.ID, libp2ptls.New)
		case batched:
			secOpt = libp2p.Security(noise.ID, p2p.BatchedNoise)
		default:
			secOpt = libp2p.Security(noise.ID, noise.New)
		}
		h, err := libp2p.New(
			libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"),
			libp2p.Transport(tcp.NewTCPTransport),
			secOpt,
			libp2p.Muxer(yamux.ID, (*yamux.Transport)(&cfg)),
			libp2p.DisableRelay(),
			libp2p.DisableMetrics(),
		)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = h.Close() })
		return h
	}
	client, server = mk(), mk()
	server.SetStreamHandler(benchSinkProtocol, func(s network.Stream) {
		_, _ = io.Copy(io.Discard, s)
		_, _ = s.Write([]byte{1})
		_ = s.Close()
	})
	if err := client.Connect(context.Background(), peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
		b.Fatal(err)
	}
	// Warm the connection: yamux's window grows with use.
	copyStream(b, client, server.ID(), make([]byte, 1<<20), 32<<20)
	return client, server
}

// copyStream writes total bytes (chunk repeated) to p's sink and waits for
// its acknowledgement.
func copyStream(b testing.TB, client host.Host, p peer.ID, chunk []byte, total int) {
	s, err := client.NewStream(context.Background(), p, benchSinkProtocol)
	if err != nil {
		b.Fatal(err)
	}
	for off := 0; off < total; off += len(chunk) {
		if _, err := s.Write(chunk[:min(len(chunk), total-off)]); err != nil {
			b.Fatal(err)
		}
	}
	_ = s.CloseWrite()
	if _, err := io.ReadFull(s, make([]byte, 1)); err != nil {
		b.Fatal(err)
	}
	_ = s.Close()
}
