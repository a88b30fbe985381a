package client

import (
	"bytes"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/satchel-net/satchel/testnet"
)

// BenchmarkReadAt reads a 16 MiB object from a testnet provider through
// io.SectionReader (as http.ServeContent does) in 4 KiB and 32 KiB pieces,
// and reports each as a ratio to WriteTo of the same object in the same
// run (readat_ratio). perCall_ratio is the same reads done the way ReadAt
// did before it kept the last chunk: a whole WriteRange per call.
//
//	go test -run '^$' -bench ReadAt ./client/
func BenchmarkReadAt(b *testing.B) {
	const size = 16 << 20
	net := testnet.New(b, testnet.Providers(1))
	c := netClient(b, net, b.TempDir())
	ctx := testCtx(b)
	data := randomBytes(b, size, 71)
	obj, err := c.Put(ctx, net.Bag, bytes.NewReader(data))
	if err != nil {
		b.Fatal(err)
	}
	r, err := c.Open(ctx, ObjectRef(net.Bag, obj.ID))
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	timed := func(f func() error) float64 {
		start := time.Now()
		if err := f(); err != nil {
			b.Fatal(err)
		}
		return float64(size) / time.Since(start).Seconds()
	}
	for _, piece := range []int{4 << 10, 32 << 10} {
		b.Run(fmt.Sprintf("piece=%dKiB", piece>>10), func(b *testing.B) {
			b.SetBytes(size)
			var whole, cached, perCall float64
			for range b.N {
				whole = timed(func() error { _, err := r.WriteTo(io.Discard); return err })
				cached = timed(func() error {
					_, err := io.CopyBuffer(io.Discard, io.NewSectionReader(r, 0, size), make([]byte, piece))
					return err
				})
				perCall = timed(func() error {
					_, err := io.CopyBuffer(io.Discard, io.NewSectionReader(perCallReader{r}, 0, size), make([]byte, piece))
					return err
				})
			}
			b.ReportMetric(whole/1e6, "writeto_MB/s")
			b.ReportMetric(cached/1e6, "readat_MB/s")
			b.ReportMetric(cached/whole, "readat_ratio")
			b.ReportMetric(perCall/whole, "perCall_ratio")
		})
	}
}

// perCallReader reads as ReadAt did before the Reader kept a chunk: every
// call a WriteRange of its own.
type perCallReader struct{ r *Reader }

func (p perCallReader) ReadAt(buf []byte, off int64) (int, error) {
	n := min(int64(len(buf)), p.r.size-off)
	if n <= 0 {
		return 0, io.EOF
	}
	bw := &sliceWriter{b: buf[:n]}
	if _, err := p.r.WriteRange(p.r.ctx, bw, off, n); err != nil {
		return bw.n, err
	}
	if n < int64(len(buf)) {
		return int(n), io.EOF
	}
	return int(n), nil
}
