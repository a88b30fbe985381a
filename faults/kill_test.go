package faults

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/satchel-net/satchel/protocol/fetch"
	"github.com/satchel-net/satchel/testnet"
)

// TestKillUnderLoad stops a provider abruptly (its host, server and store
// closed at a random moment, as kill -9 would leave it: nothing flushed on
// the way out that a crash would not) while uploads to every provider and
// reads of what was acknowledged run, then restarts it. Every upload that
// was acknowledged must be held, whole, by every provider it was
// acknowledged by once they run again; no read may serve bytes that are
// not the object's.
func TestKillUnderLoad(t *testing.T) {
	kills := pick(3, 50)
	net := testnet.New(t, testnet.Providers(3))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	r := rand.New(rand.NewPCG(1, uint64(time.Now().UnixNano())))
	h, err := net.ClientHost(ctx)
	if err != nil {
		t.Fatal(err)
	}
	fc := fetch.NewClient(h.Libp2p())
	defer fc.Close()

	var (
		f     = figures{Scenario: "kill -9 under uploads and reads"}
		acked []object
		mu    sync.Mutex
	)
	for range kills {
		victim := r.IntN(3)
		data := randData(r, 1<<20+r.IntN(1<<20))
		delay := time.Duration(r.IntN(1500)) * time.Millisecond
		var wg sync.WaitGroup
		mu.Lock()
		f.Attempted++
		mu.Unlock()
		wg.Go(func() {
			o, err := upload(ctx, net, data, 0, 1, 2)
			if err == nil {
				mu.Lock()
				acked = append(acked, o)
				mu.Unlock()
			}
		})
		// And one to the two others, which the kill does not touch.
		others := []int{(victim + 1) % 3, (victim + 2) % 3}
		more := randData(r, 1<<20)
		mu.Lock()
		f.Attempted++
		mu.Unlock()
		wg.Go(func() {
			o, err := upload(ctx, net, more, others...)
			if err != nil {
				t.Errorf("upload to providers %v, not killed: %v", others, err)
				return
			}
			o.to = others
			mu.Lock()
			acked = append(acked, o)
			mu.Unlock()
		})
		// Reads of what was acknowledged, from every provider, during the kill.
		mu.Lock()
		toRead := append([]object(nil), acked...)
		mu.Unlock()
		wg.Go(func() {
			for _, o := range toRead[max(0, len(toRead)-3):] {
				for i := range 3 {
					if ai := net.Provider(i).AddrInfo(); ai.ID != "" {
						res := readFailed
						if h.Connect(ctx, ai) == nil {
							res = read(ctx, fc, ai.ID, o)
						}
						mu.Lock()
						f.Attempted++
						if res == readCorrupted {
							f.Corrupted++
						}
						mu.Unlock()
					}
				}
			}
		})
		// The fault, at a random moment of the upload.
		timer := time.NewTimer(delay)
		<-timer.C
		if err := net.Provider(victim).Kill(); err != nil {
			t.Logf("kill provider %d: %v", victim, err)
		}
		wg.Wait()
		start := time.Now()
		if err := net.Provider(victim).Restart(ctx); err != nil {
			t.Fatalf("restart provider %d: %v", victim, err)
		}
		f.Recover = max(f.Recover, time.Since(start))
	}

	// Every acknowledged object is held whole by every provider, and reads back.
	for _, o := range acked {
		for _, i := range o.holders() {
			p := net.Provider(i)
			if _, ok := waitFor(30*time.Second, func() bool { return p.Holds(o.obj.ID) }); !ok {
				t.Errorf("object %d, acknowledged by provider %d, is not held after restarts", o.obj.ID, i)
				f.Lost++
				continue
			}
			if res := readBack(ctx, h.Libp2p(), fc, p.AddrInfo(), o); res != readOK {
				t.Errorf("object %d from provider %d: read %v", o.obj.ID, i, res)
				if res == readCorrupted {
					f.Corrupted++
				} else {
					f.Lost++
				}
			}
		}
	}
	f.Acknowledged = len(acked)
	if f.Acknowledged == 0 {
		t.Error("no upload was acknowledged: the scenario proved nothing")
	}
	f.Note = "kills: " + itoa(kills)
	report(t, f)
}
