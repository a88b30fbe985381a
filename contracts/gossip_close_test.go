package contracts

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPublishRacingClose: Publishes racing a Gossip's Close either publish
// before Close returns or fail ErrClosed and publish nothing, and one after
// it fails ErrClosed at once. Each publish is seen by the topic's
// validator (a subscription of the Gossip keeps it registered, judging
// with the Gossip's counts): it counts as many proposals as Publishes
// succeeded, and none once Close returned. Run with -race.
func TestPublishRacingClose(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a chain")
	}
	w := newWorld(t, 1, 0, 0, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h := w.net.Host(0)
	p, err := w.renterAt(0).renter.Propose(w.request(5<<20, 60*day, 1))
	must(t, err)
	for round := range 5 {
		g := NewGossip(h, w.chain, quiet())
		_, release, err := g.Subscribe(p.Topic)
		must(t, err)

		var ok atomic.Int64
		started := make(chan struct{}, 64)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for {
					err := g.Publish(ctx, p)
					if errors.Is(err, ErrClosed) {
						return
					}
					if err != nil {
						t.Errorf("Publish: %v, want nil or ErrClosed", err)
						return
					}
					ok.Add(1)
					select {
					case started <- struct{}{}:
					default:
					}
				}
			})
		}
		for range 8 { // Close comes with Publishes in full flow
			select {
			case <-started:
			case <-ctx.Done():
				t.Fatal("no Publish succeeded in time")
			}
		}
		must(t, g.Close())
		judged := g.Stats().Accepted
		wg.Wait()
		if n := g.Stats().Accepted; n != judged {
			t.Fatalf("round %d: %d proposals published after Close returned", round, n-judged)
		}
		if judged != ok.Load() {
			t.Fatalf("round %d: the validator saw %d proposals, %d Publishes succeeded; want as many", round, judged, ok.Load())
		}
		if err := g.Publish(ctx, p); !errors.Is(err, ErrClosed) {
			t.Fatalf("Publish after Close: %v, want ErrClosed", err)
		}
		if _, _, err := g.Subscribe(p.Topic); !errors.Is(err, ErrClosed) {
			t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
		}
		if n := g.Stats().Accepted; n != judged {
			t.Fatalf("round %d: a Publish after Close published", round)
		}
		release()
	}
}
