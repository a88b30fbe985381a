package blockstore

import (
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chunker"
)

// BenchmarkPut stores 1 MiB blocks durably from 4 goroutines, plain and in
// an upload session (the store handler's path).
func BenchmarkPut(b *testing.B) {
	for _, session := range []bool{false, true} {
		name := "plain"
		if session {
			name = "session"
		}
		b.Run(name, func(b *testing.B) {
			s, err := Open(b.TempDir(), WithSessionExpiry(0), WithLogger(discard))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			const n = 64
			blocks := make([][]byte, n)
			for i := range blocks {
				blocks[i] = randBytes(uint64(i)+1000*uint64(b.N), 1<<20)
			}
			sess := Session{ID: []byte("bench"), Bag: "b", Expiry: time.Now().Add(time.Hour)}
			b.SetBytes(n << 20)
			b.ResetTimer()
			for it := range b.N {
				work := make(chan []byte)
				var wg sync.WaitGroup
				for range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for d := range work {
							d = append([]byte{byte(it)}, d[1:]...)
							c := chunker.ChunkCID(d)
							var err error
							if session {
								err = s.PutInSession(sess, c, d)
							} else {
								err = s.Put(c, d)
							}
							if err != nil {
								b.Error(err)
							}
						}
					}()
				}
				for _, d := range blocks {
					work <- d
				}
				close(work)
				wg.Wait()
			}
		})
	}
}
