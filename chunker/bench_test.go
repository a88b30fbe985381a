package chunker_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/satchel-net/satchel/chunker"
)

// BenchmarkSum chunks and hashes a generated 1 GiB stream with 1 and 2
// workers and reports its throughput as a ratio to raw sha2-256 on one core
// (crypto/sha256 over an in-memory 1 MiB buffer, the same implementation the
// chunker uses), measured in the same run: ratio_vs_sha256_1core. It also
// reports the process's peak RSS (VmHWM) in MiB, the CPU time it used per
// second of chunking (cores_used), and sha256_2core_vs_1core,
// the speed-up two goroutines gave raw hashing in the same run: on a machine
// shared with other work, workers=2 cannot beat it. Run it with
//
//	go test ./chunker -run '^$' -bench Sum -benchtime 1x
func BenchmarkSum(b *testing.B) {
	const size = 1 << 30
	buf := streamBytes(b, chunker.DefaultChunkSize)
	for _, workers := range []int{1, 2} {
		b.Run(fmt.Sprintf("workers=%d", workers), func(b *testing.B) {
			b.SetBytes(size)
			var raw, chunked, cpu time.Duration
			for range b.N {
				// The ceiling is measured just before and just after, and
				// the faster one counts, so a busy machine lowers the
				// ratio rather than flattering it.
				b.StopTimer()
				before := sha256Time(buf, size)
				b.StartTimer()
				start, startCPU := time.Now(), cpuTime()
				res, err := chunker.Sum(context.Background(), stream(size), chunker.WithWorkers(workers))
				if err != nil {
					b.Fatal(err)
				}
				chunked += time.Since(start)
				cpu += cpuTime() - startCPU
				b.StopTimer()
				raw += min(before, sha256Time(buf, size))
				b.StartTimer()
				if res.Size != size {
					b.Fatalf("chunked %d bytes, want %d", res.Size, size)
				}
			}
			b.StopTimer()
			b.ReportMetric(raw.Seconds()/chunked.Seconds(), "ratio_vs_sha256_1core")
			b.ReportMetric(float64(b.N)*size/1e6/raw.Seconds(), "sha256_MB/s")
			b.ReportMetric(cpu.Seconds()/chunked.Seconds(), "cores_used")
			// How much two cores gave raw hashing in this run: what
			// workers=2 can reach at best on a machine shared with others.
			b.ReportMetric(sha256Time(buf, size).Seconds()/sha256TimeParallel(buf, size, 2).Seconds(), "sha256_2core_vs_1core")
			if hwm, err := peakRSS(); err == nil {
				b.ReportMetric(float64(hwm)/(1<<20), "peak_rss_MiB")
			}
		})
	}
}

// sha256Time returns how long one core takes to sha2-256 size bytes in
// chunks of len(buf): the ceiling of chunk hashing on this machine.
func sha256Time(buf []byte, size int) time.Duration {
	start := time.Now()
	for n := 0; n < size; n += len(buf) {
		_ = sha256.Sum256(buf)
	}
	return time.Since(start)
}

// sha256TimeParallel is sha256Time with the work split over n goroutines.
func sha256TimeParallel(buf []byte, size, n int) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			local := bytes.Clone(buf)
			for k := 0; k < size/n; k += len(local) {
				_ = sha256.Sum256(local)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

// peakRSS reads the process's peak resident set size (VmHWM) in bytes.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmHWM in /proc/self/status")
}

// BenchmarkVerifyProof verifies the proof of every chunk of a file of 1024
// chunks (two levels: the root and six nodes of up to MaxLinks links), as a
// provider taking the file does: with VerifyProof, which hashes and decodes
// both nodes of every proof, and with a ProofVerifier, which does so once
// per node. It reports µs per chunk of each and their ratio.
func BenchmarkVerifyProof(b *testing.B) {
	data := make([]byte, 1024*1024)
	for i := range data { // distinct chunks, distinct nodes
		data[i] = byte(rand.Uint32())
	}
	res, err := chunker.Sum(context.Background(), bytes.NewReader(data), chunker.WithChunkSize(1024), chunker.WithNodes(true))
	if err != nil {
		b.Fatal(err)
	}
	proofs := make([]chunker.Proof, len(res.Chunks))
	for i := range proofs {
		if proofs[i], err = res.Proof(i); err != nil {
			b.Fatal(err)
		}
	}
	run := func(verify func(root, chunk cid.Cid, i int, p chunker.Proof) error) float64 {
		start := time.Now()
		for range b.N {
			for i, ch := range res.Chunks {
				if err := verify(res.Root, ch.CID, i, proofs[i]); err != nil {
					b.Fatal(err)
				}
			}
		}
		return float64(time.Since(start).Microseconds()) / float64(b.N*len(res.Chunks))
	}
	plain := run(chunker.VerifyProof)
	remembered := run(chunker.NewProofVerifier(0).Verify)
	b.ReportMetric(plain, "plain_µs/chunk")
	b.ReportMetric(remembered, "verifier_µs/chunk")
	b.ReportMetric(remembered/plain, "verifier/plain")
}
