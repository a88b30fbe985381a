package audit_test

import (
	"bytes"
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/internal/benchutil"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/provider/blockstore"
)

// BenchmarkAudit runs audits of 4 whole 1 MiB chunks of a 64 MiB object
// held in a real block store (direct I/O, every chunk verified on the
// provider's read and against the proof on the challenger's side) and
// reports what one audit costs: bytes each way, CPU seconds of both sides
// together (they share the process), and its throughput as a ratio to a
// plain libp2p stream moving the same bytes between the same hosts in the
// same run (audit/raw: what proof building, reading and verifying cost on
// top of the transport).
func BenchmarkAudit(b *testing.B) {
	const chunk, size, samples = 1 << 20, 64 << 20, 4
	client, server := benchutil.Hosts(b)
	bs, err := blockstore.Open(benchutil.Dir(b), blockstore.WithSessionExpiry(0), blockstore.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bs.Close() })
	data := benchutil.Rand(11, size)
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(chunk))
	if err != nil {
		b.Fatal(err)
	}
	m := blockstore.Manifest{Bag: "dynamic:channel:1", Object: 1, Root: res.Root}
	for _, c := range res.Chunks {
		if err := bs.Put(c.CID, data[c.Offset:c.Offset+int64(c.Size)]); err != nil {
			b.Fatal(err)
		}
		m.Chunks = append(m.Chunks, blockstore.ChunkRef{CID: c.CID, Size: uint64(c.Size)})
	}
	if err := bs.PutManifest(m); err != nil {
		b.Fatal(err)
	}
	h := audit.NewHandler(bs.ForAudit(), bs.ForAudit(), audit.WithRate(1e6, 1e6),
		audit.WithAnswerBudget(1<<40, 1<<40), // the protocol's cost, not the node's budget, is measured
		audit.WithLogger(slog.New(slog.DiscardHandler)))
	h.Register(server.Protocol())
	b.Cleanup(func() { _ = h.Close() })
	c, err := audit.NewClient(client.Libp2p())
	if err != nil {
		b.Fatal(err)
	}
	target := audit.Target{Bag: m.Bag, Object: 1, Root: res.Root}
	ctx := context.Background()

	var in, out int
	var took time.Duration
	cpu0 := benchutil.CPUSeconds()
	b.ResetTimer()
	for i := range b.N {
		smp := make([]audit.Sample, samples)
		for k := range smp {
			smp[k].Index = (i*samples + k*17) % len(res.Chunks)
		}
		o, err := c.Audit(ctx, server.ID(), target, smp)
		if err != nil || !o.Pass {
			b.Fatalf("audit: %v %v", err, o.Err)
		}
		in += o.BytesIn
		out += o.BytesOut
		took += o.Took
	}
	b.StopTimer()
	cpu := benchutil.CPUSeconds() - cpu0
	raw := benchutil.RawCopy(b, client.Libp2p(), server.ID(), data[:in/b.N])
	b.ReportMetric(float64(in)/float64(b.N), "bytes_in/audit")
	b.ReportMetric(float64(out)/float64(b.N), "bytes_out/audit")
	b.ReportMetric(cpu/float64(b.N), "cpu_s/audit")
	b.ReportMetric(raw.Seconds()/(took.Seconds()/float64(b.N)), "audit/raw")
}
