package audit_test

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// A ResultFilter takes a result whose time is within ResultWindow of its
// clock, either way, once; a copy is refused while the result is in the
// window, and once it left the window it is stale. A forged one is
// refused as OpenMessage refuses it.
func TestResultFilterWindow(t *testing.T) {
	key, _, _ := crypto.GenerateEd25519Key(rand.Reader)
	id, _ := peer.IDFromPrivateKey(key)
	now := time.Now()
	f := audit.NewResultFilter(audit.WithResultClock(func() time.Time { return now }))
	msg := func(at time.Time) *pubsub.Message {
		data, err := audit.SignResult(key, &pb.AuditResult{Auditor: []byte(id), Provider: []byte(id), Bag: testBag, Object: 1,
			Verdict: pb.Verdict_VERDICT_FAIL, TimeUnixMs: at.UnixMilli()})
		if err != nil {
			t.Fatal(err)
		}
		return &pubsub.Message{Message: &pubsubpb.Message{Data: data, From: []byte(id)}}
	}
	for _, d := range []time.Duration{-audit.ResultWindow - time.Second, audit.ResultWindow + time.Second} {
		if r, _, err := f.Open(msg(now.Add(d))); !errors.Is(err, audit.ErrStale) || r == nil {
			t.Fatalf("a result %v from the clock: %v; want ErrStale, with the result", d, err)
		}
	}
	for _, d := range []time.Duration{-audit.ResultWindow + time.Second, audit.ResultWindow - time.Second} {
		m := msg(now.Add(d))
		r, key, err := f.Open(m)
		if err != nil || !f.Take(r, key) {
			t.Fatalf("a result %v from the clock: %v", d, err)
		}
		if f.Take(r, key) {
			t.Fatal("a result taken twice")
		}
		if _, _, err := f.Open(m); !errors.Is(err, audit.ErrReplay) {
			t.Fatalf("the result %v from the clock again: %v; want ErrReplay", d, err)
		}
	}
	m := msg(now)
	r, k, err := f.Open(m)
	if err != nil || !f.Take(r, k) {
		t.Fatal(err)
	}
	now = now.Add(audit.ResultWindow + time.Millisecond)
	if _, _, err := f.Open(m); !errors.Is(err, audit.ErrStale) {
		t.Fatalf("a result taken, after it left the window: %v; want ErrStale", err)
	}
	m.From = []byte("someone else")
	if r, _, err := f.Open(m); !errors.Is(err, audit.ErrInvalid) || errors.Is(err, audit.ErrStale) || r != nil {
		t.Fatalf("a result under another author: %v", err)
	}
}
