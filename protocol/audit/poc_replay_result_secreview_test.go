package audit_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pspb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// PoC (secreview, session 14): FAILS on main by design.
//
// An audit result carries its time (time_unix_ms) but nobody checks it:
// audit.OpenMessage (protocol/audit/result.go:21) checks the signature and
// that the gossipsub author is the auditor, and the provider's validator
// (provider/audit_heard.go:37) adds the operator check. The only thing that
// stops a replay is gossipsub's seen cache (TimeCacheDuration, 120 s, swept
// every minute; a second here, so the replay lands within about a minute). Any peer that once received an operator's FAIL result (any
// subscriber of "0a": a fresh peer ID) can send the very same signed
// message again once that has passed, and every node accepts it as new:
// the failing provider re-reads the whole object each time (resyncCooldown
// is 1 minute, shorter than the seen cache), the status API shows a fresh
// failure, and each copy spends the honest operator's relay rate
// (ResultRate), so a replayer also gets the operator's real results
// ignored. The fix: validators ignore a result whose time_unix_ms is more
// than ~ TimeCacheDuration/2 from the node's clock (auditors publish at
// once), so the seen cache covers every result still accepted.
func TestPoCAuditResultReplayedAfterSeenCache(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the seen cache's one-minute sweep")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const seen = time.Second
	net := testnet.NewMock(t, 3, 0, testnet.WithHostOptions(func(i int) []p2p.Option {
		if i == 1 {
			return []p2p.Option{p2p.WithPubSubOptions(pubsub.WithSeenMessagesTTL(seen))}
		}
		return nil
	}))
	if err := net.Mocknet().ConnectAllButSelf(); err != nil {
		t.Fatal(err)
	}
	// 0: honest operator (auditor), 1: victim node, 2: attacker (any peer)
	hs := []host.Host{net.Host(0).Libp2p(), net.Host(1).Libp2p(), net.Host(2).Libp2p()}
	if err := net.Host(1).PubSub().RegisterTopicValidator("0a", func(_ context.Context, _ peer.ID, m *pubsub.Message) bool {
		_, err := audit.OpenMessage(m)
		return err == nil
	}); err != nil {
		t.Fatal(err)
	}
	accepted := 0
	var subs [3]*pubsub.Subscription
	var topics [3]*pubsub.Topic
	var err error
	for i := range 3 {
		if topics[i], err = net.Host(i).Join("0a"); err != nil {
			t.Fatal(err)
		}
		if subs[i], err = topics[i].Subscribe(); err != nil {
			t.Fatal(err)
		}
	}
	for len(topics[0].ListPeers()) < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("no topic peers")
		case <-time.After(10 * time.Millisecond):
		}
	}
	key := hs[0].Peerstore().PrivKey(hs[0].ID())
	data, err := audit.SignResult(key, &pb.AuditResult{Auditor: []byte(hs[0].ID()), Provider: []byte(hs[1].ID()),
		Bag: "dynamic:channel:7", Object: 3, Verdict: pb.Verdict_VERDICT_FAIL, Reason: "chunk 5 missing",
		TimeUnixMs: time.Now().UnixMilli(), Repair: "provider-resync"})
	if err != nil {
		t.Fatal(err)
	}
	if err := topics[0].Publish(ctx, data, pubsub.WithReadiness(pubsub.MinTopicSize(2))); err != nil {
		t.Fatal(err)
	}
	if _, err := subs[1].Next(ctx); err != nil {
		t.Fatal(err)
	}
	accepted++
	recorded, err := subs[2].Next(ctx) // the attacker keeps what it heard
	if err != nil {
		t.Fatal(err)
	}

	// After the victim's seen cache forgot it, the attacker sends the
	// recorded message as it came, over a pubsub stream of its own, again
	// until it is delivered or the seen cache was swept (once a minute, the
	// library's sweep) after its TTL.
	sentAt := time.Now()
	deadline := sentAt.Add(seen + 75*time.Second) // the cache is swept once a minute
	got := make(chan struct{}, 1)
	go func() {
		if _, err := subs[1].Next(ctx); err == nil {
			got <- struct{}{}
		}
	}()
	sends := 0
	for accepted < 2 && time.Now().Before(deadline) {
		sendRaw(ctx, t, hs[2], hs[1].ID(), recorded.Message)
		sends++
		select {
		case <-got:
			accepted++
		case <-time.After(2 * time.Second):
		}
	}
	t.Logf("the operator's one FAIL result was delivered %d times by the victim's validator; the attacker's copy got through after %d sends over %v (seen cache TTL %v plus the library's 1-minute sweep; 120–180 s in production)",
		accepted, sends, time.Since(sentAt).Round(time.Millisecond), seen)
	if accepted > 1 {
		t.Errorf("a result replayed by another peer was accepted again: %d deliveries of one signed result", accepted)
	}
}

// sendRaw writes one gossipsub RPC publishing m to peer to, as any peer
// speaking /meshsub/1.1.0 can: the varint-delimited RPC protobuf.
func sendRaw(ctx context.Context, t *testing.T, from interface {
	NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error)
}, to peer.ID, m *pspb.Message) {
	t.Helper()
	s, err := from.NewStream(ctx, to, pubsub.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	rpc := &pspb.RPC{Publish: []*pspb.Message{m}}
	b, err := proto.Marshal(rpc)
	if err != nil {
		t.Fatal(err)
	}
	w := bufio.NewWriter(s)
	_, _ = w.Write(binary.AppendUvarint(nil, uint64(len(b))))
	_, _ = w.Write(b)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	// Left open: pubsub reads it until the stream closes; closing at once
	// may drop the unread RPC. The next send replaces it (duplicate stream).
}
