package contracts

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/topics"
)

// TestPublishRacingClose: Publishes racing a Gossip's Close either publish
// before Close returns or fail ErrClosed and publish nothing, and one after
// it fails ErrClosed at once. Each publish is seen by the topic's
// validator (a subscription of the Gossip keeps it registered, judging
// with the Gossip's counts): it counts as many proposals as Publishes
// succeeded, and none once Close returned. Run with -race.
func TestPublishRacingClose(t *testing.T) {
	w, ctx := chainWorld(t, 1, 0, 0, time.Minute)
	h := w.net.Host(0)
	p, err := w.renterAt(0).renter.Propose(w.request(5<<20, 60*day, 1))
	must(t, err)
	for round := range 5 {
		g := NewGossip(h, w.chain, quiet())
		_, release, err := g.Subscribe(p.Topic)
		must(t, err)

		var ok atomic.Int64
		var judged int64
		raceClose(t, ctx, g, "Publish", func() error {
			err := g.Publish(ctx, p)
			if err == nil {
				ok.Add(1)
			}
			return err
		}, func() { judged = g.Stats().Accepted })
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

// TestSubscribeRacingClose: Subscribes racing a Gossip's Close either
// subscribe before Close returns or fail ErrClosed holding nothing, so no
// subscription (nor hold of its topic) appears once Close returned. Run
// with -race.
func TestSubscribeRacingClose(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for round := range 5 {
		g := NewGossip(h, nil, quiet())
		var mu sync.Mutex
		var releases []func()
		var held int
		raceClose(t, ctx, g, "Subscribe", func() error {
			_, release, err := g.Subscribe(topicA)
			if err == nil {
				mu.Lock()
				releases = append(releases, release)
				mu.Unlock()
			}
			return err
		}, func() { held = holdsOf(h, topicA) })
		if n := holdsOf(h, topicA); n != held || n != len(releases) {
			t.Fatalf("round %d: %d holds when Close returned, %d after, %d subscriptions; want as many", round, held, n, len(releases))
		}
		for _, release := range releases {
			release()
		}
		validatorFree(t, h, "every subscription released")
	}
}

// raceClose calls op on 8 goroutines, each until it fails ErrClosed
// (any other error fails the test), and closes g once 8 calls succeeded,
// with calls in full flow. closed runs as soon as Close returned, before
// the racing calls have all ended; raceClose returns once they have.
func raceClose(t *testing.T, ctx context.Context, g *Gossip, what string, op func() error, closed func()) {
	t.Helper()
	started := make(chan struct{}, 64)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				err := op()
				if errors.Is(err, ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("%s: %v, want nil or ErrClosed", what, err)
					return
				}
				select {
				case started <- struct{}{}:
				default:
				}
			}
		})
	}
	for range 8 {
		select {
		case <-started:
		case <-ctx.Done():
			must(t, g.Close())
			wg.Wait()
			t.Fatalf("no %s succeeded in time", what)
		}
	}
	must(t, g.Close())
	closed()
	wg.Wait()
}

// holdsOf returns the holds of topic on h's share.
func holdsOf(h *p2p.Host, topic topics.Topic) int {
	sharesMu.Lock()
	s := shares[h]
	sharesMu.Unlock()
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.holds[topic.String()])
}

// gateDir is a Directory whose member lookups, each in turn, report
// that they started and wait to be let on before they answer.
type gateDir struct {
	Directory
	entered, proceed chan struct{}
	answer           func(ctx context.Context) (chain.Member, error)
}

func (d *gateDir) Member(ctx context.Context, _ chain.MemberID) (chain.Member, error) {
	d.entered <- struct{}{}
	<-d.proceed
	return d.answer(ctx)
}

// TestPublishFaultOverClose: a Publish whose proposal is found at fault
// while Close runs reports the fault (the caller needs the reason), and
// one whose chain read Close cut short reports ErrClosed.
func TestPublishFaultOverClose(t *testing.T) {
	net := testnet.NewMock(t, 1, 0)
	h := net.Host(0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rn := NewRenter(h, NewGossip(h, nil, quiet()), seedKey(t, 1), 1, nil, nil, quiet())
	defer rn.Close()
	p, err := rn.Propose(Request{Duration: 60 * day, Terms: Terms{Bag: "dynamic:channel:7", Size: 5 << 20, Chunks: 5,
		Availability: topics.High, Speed: topics.High, Redundancy: 1}})
	must(t, err)
	for _, tc := range []struct {
		name   string
		answer func(ctx context.Context) (chain.Member, error)
		want   error
	}{
		{"not a member", func(context.Context) (chain.Member, error) { return chain.Member{}, chain.ErrNotFound }, ErrNotMember},
		{"read cut short", func(ctx context.Context) (chain.Member, error) { <-ctx.Done(); return chain.Member{}, ctx.Err() }, ErrClosed},
	} {
		dir := &gateDir{entered: make(chan struct{}), proceed: make(chan struct{}), answer: tc.answer}
		g := NewGossip(h, dir, quiet())
		errc := make(chan error, 1)
		go func() { errc <- g.Publish(ctx, p) }()
		select {
		case <-dir.entered:
		case <-ctx.Done():
			t.Fatalf("%s: the member lookup did not start", tc.name)
		}
		closed := make(chan error, 1)
		go func() { closed <- g.Close() }()
		<-g.done.Done() // Close began: it waits for the Publish
		close(dir.proceed)
		if err := <-errc; !errors.Is(err, tc.want) || tc.want != ErrClosed && errors.Is(err, ErrClosed) {
			t.Errorf("%s: Publish = %v, want %v", tc.name, err, tc.want)
		}
		must(t, <-closed)
	}
}
