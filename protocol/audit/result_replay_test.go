package audit_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pspb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// A signed audit result is valid forever, and gossipsub forgets the
// messages it saw after 2 minutes: before session 14 any peer that heard an
// operator's FAIL could send it again then, as a raw gossipsub message, and
// the victim took it as new (re-reading the object, showing a fresh
// failure, spending the operator's relay rate). A validator opening results
// with a ResultFilter ignores a result outside ResultWindow of its clock —
// here the victim's clock is moved on rather than waiting out the seen
// cache — and a result it took before, however it comes back (here its
// auditor publishes the same bytes again, a message gossipsub has not
// seen). Session 15: the victim was away disconnected, and under load a
// connection closed and opened again left a pubsub stream to it, so it
// sometimes took the result before its clock moved; gossipsub judges a
// message once, so every later copy was a duplicate and the test waited
// out its minute. It is now away unsubscribed, and taking the replay
// fails at once.
func TestAuditResultReplayIgnored(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	net := testnet.NewMock(t, 3, 0)
	// 0: honest operator (auditor), 1: victim, 2: attacker (any peer)
	op, victim, attacker := net.Host(0), net.Host(1), net.Host(2)
	var ahead atomic.Int64 // how far the victim's clock is ahead
	filter := audit.NewResultFilter(audit.WithResultClock(func() time.Time {
		return time.Now().Add(time.Duration(ahead.Load()))
	}))
	verdicts := make(chan verdict, 64)
	if err := victim.PubSub().RegisterTopicValidator(audit.Topic, func(vctx context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		r, key, err := filter.Open(m)
		if err == nil && !filter.Take(r, key) {
			err = audit.ErrReplay
		}
		select {
		case verdicts <- verdict{data: m.GetData(), err: err}:
		case <-vctx.Done(): // the test ended
		}
		if err != nil {
			return pubsub.ValidationIgnore
		}
		return pubsub.ValidationAccept
	}); err != nil {
		t.Fatal(err)
	}
	// The victim is away (not subscribed: gossipsub sends a topic's
	// messages, and gossip about them, only to the peers that subscribed)
	// while the operator publishes and the attacker records. Not
	// disconnected instead: a connection closed and opened again can leave
	// the victim's gossipsub writing to the closed one (it found the peer
	// still connected as it closed), its subscription never announced again.
	var subs [3]*pubsub.Subscription
	for _, i := range []int{0, 2} {
		s, err := net.Host(i).Subscribe(audit.Topic)
		if err != nil {
			t.Fatal(err)
		}
		subs[i] = s
	}
	key := op.Libp2p().Peerstore().PrivKey(op.ID())
	result := func() []byte {
		data, err := audit.SignResult(key, &pb.AuditResult{Auditor: []byte(op.ID()), Provider: []byte(victim.ID()),
			Bag: "dynamic:channel:7", Object: 3, Verdict: pb.Verdict_VERDICT_FAIL, Reason: "chunk 5 missing",
			Nonce: randomBytes(t, 16), TimeUnixMs: time.Now().UnixMilli(), Repair: "provider-resync"})
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	waitTopicPeer(ctx, t, op, attacker.ID())
	// Published again (a new result) until the attacker has one: a
	// subscriber's stream may open after its subscription was heard.
	var recorded *pubsub.Message
	for recorded == nil {
		if err := op.Publish(ctx, audit.Topic, result()); err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		recorded, _ = subs[2].Next(wctx)
		wcancel()
		if ctx.Err() != nil {
			t.Fatal("the attacker heard no result")
		}
	}

	// Once the result is out of the window, the attacker sends it to the
	// victim as it was recorded.
	ahead.Store(int64(audit.ResultWindow + time.Second))
	s, err := victim.Subscribe(audit.Topic)
	if err != nil {
		t.Fatal(err)
	}
	subs[1] = s
	// The replay comes from a bare peer the attacker controls, speaking
	// gossipsub by hand: a peer with a pubsub stream of its own to the
	// victim would have one of the two inbound streams reset (the victim
	// keeps one per peer), perhaps the replay's unread. Sent again until
	// judged.
	mn := net.Mocknet()
	bare, err := mn.GenPeer()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mn.LinkPeers(bare.ID(), victim.ID()); err != nil {
		t.Fatal(err)
	}
	if _, err := mn.ConnectPeers(bare.ID(), victim.ID()); err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for rctx.Err() == nil {
			_ = sendRaw(rctx, bare, victim.ID(), recorded.Message) // again below if lost
			select {
			case <-rctx.Done():
			case <-time.After(500 * time.Millisecond):
			}
		}
	}()
	err = verdictOn(ctx, t, verdicts, recorded.Data)
	stop()
	<-sent
	// Whatever was judged meanwhile (copies of the replay, the results
	// published while the victim was away, gossiped late) is refused, as
	// stale, and must not reach the checks below.
	for len(verdicts) > 0 {
		if v := <-verdicts; v.err == nil {
			t.Fatal("a result taken while the victim's clock was past them all")
		}
	}
	if !errors.Is(err, audit.ErrStale) {
		t.Fatalf("a FAIL replayed %v after its time: %v; want ErrStale", audit.ResultWindow, err)
	}

	// A fresh result is taken once; the same bytes again are not.
	ahead.Store(0)
	waitTopicPeer(ctx, t, op, victim.ID())
	var fresh []byte
	for fresh == nil {
		data := result()
		if err := op.Publish(ctx, audit.Topic, data); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-verdicts:
			if string(v.data) == string(recorded.Data) {
				continue // a late copy of the replay, refused
			}
			if v.err != nil {
				t.Fatalf("a fresh result: %v", v.err)
			}
			fresh = v.data
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the victim's validator never saw a fresh result")
		}
	}
	got, err := subs[1].Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) == string(recorded.Data) {
		t.Fatal("the victim delivered the replayed result")
	}
	// Published again (gossip is best effort) until the victim judges a
	// copy: every copy is refused.
	for judged := false; !judged; {
		if err := op.Publish(ctx, audit.Topic, fresh); err != nil {
			t.Fatal(err)
		}
		select {
		case v := <-verdicts:
			if string(v.data) != string(fresh) {
				continue // a fresh result published above, judged late
			}
			if !errors.Is(v.err, audit.ErrReplay) {
				t.Fatalf("the same result published again: %v; want ErrReplay", v.err)
			}
			judged = true
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal("the victim's validator never saw the result again")
		}
	}
}

// verdict is what the victim's validator decided about a message.
type verdict struct {
	data []byte
	err  error
}

// verdictOn waits for the victim's validator's verdict on a message of
// data, which must refuse it (other results, published while waiting for
// one to arrive, may be judged first). Gossipsub validates a message once:
// a copy of one it took is a duplicate, never judged again.
func verdictOn(ctx context.Context, t *testing.T, verdicts <-chan verdict, data []byte) error {
	t.Helper()
	for {
		select {
		case v := <-verdicts:
			if string(v.data) != string(data) {
				continue
			}
			if v.err == nil {
				t.Fatal("the victim took the replayed result")
			}
			return v.err
		case <-ctx.Done():
			t.Fatal("the victim's validator never judged the result")
			return nil
		}
	}
}

// waitTopicPeer waits until h sees p on the audit topic.
func waitTopicPeer(ctx context.Context, t *testing.T, h interface{ TopicPeers(string) []peer.ID }, p peer.ID) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !slices.Contains(h.TopicPeers(audit.Topic), p) {
		select {
		case <-ctx.Done():
			t.Fatalf("%s not seen on the audit topic", p)
		case <-tick.C:
		}
	}
}

// sendRaw writes one gossipsub RPC publishing m to peer to, as any peer
// speaking /meshsub/1.1.0 can: the varint-delimited RPC protobuf.
func sendRaw(ctx context.Context, from host.Host, to peer.ID, m *pspb.Message) error {
	s, err := from.NewStream(ctx, to, pubsub.GossipSubID_v11)
	if err != nil {
		return err
	}
	b, err := proto.Marshal(&pspb.RPC{Publish: []*pspb.Message{m}})
	if err != nil {
		return err
	}
	w := bufio.NewWriter(s)
	_, _ = w.Write(binary.AppendUvarint(nil, uint64(len(b))))
	_, _ = w.Write(b)
	// Left open: pubsub reads it until the stream closes; closing at once
	// may drop the unread RPC.
	return w.Flush()
}
