package p2p_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"

	"github.com/satchel-net/satchel/p2p"
	"github.com/satchel-net/satchel/topics"
)

// A peer that speaks gossipsub's wire format by hand subscribes to 10,000
// made-up topics, then to one Satchel topic in an RPC carrying more
// subscriptions than a peer needs, then to a Satchel topic properly. The
// host tracks only the last: made-up names take no place in its topic
// table, and the oversized RPC is ignored whole. Satchel's topics still
// carry messages between Satchel hosts, and the host refuses to join a
// made-up topic itself.
func TestSubscriptionFilter(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The attacker takes the victim's own gossipsub stream, so the victim
	// counts it as a pubsub peer and lists it on the topics it tracks.
	victim, att := victimAndAttacker(t, ctx, func(att host.Host) {
		att.SetStreamHandler(pubsub.GossipSubID_v11, func(s network.Stream) { _, _ = io.Copy(io.Discard, s) })
	})
	s, err := att.NewStream(ctx, victim.ID(), pubsub.GossipSubID_v11)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Reset()

	var madeUp []string
	for r := range 100 {
		var names []string
		for i := range 100 {
			names = append(names, fmt.Sprintf("made-up-%d-%d", r, i))
		}
		madeUp = append(madeUp, names...)
		sendSubscribe(t, s, names...)
	}
	const oversized = "0f01010101"
	over := []string{oversized}
	for i := range 200 {
		over = append(over, fmt.Sprintf("over-%d", i))
	}
	sendSubscribe(t, s, over...)
	sendSubscribe(t, s, contractTopic)

	// One stream's RPCs are handled in order: once the last is, all are.
	poll(t, ctx, "the victim to list the attacker on "+contractTopic, func() bool {
		return slices.Contains(victim.TopicPeers(contractTopic), att.ID())
	})
	for _, name := range append(madeUp, over...) {
		if peers := victim.TopicPeers(name); len(peers) != 0 {
			t.Fatalf("the victim tracks subscribers %v of topic %q", peers, name)
		}
	}

	// Satchel's topics still work between Satchel hosts.
	friend, err := p2p.New(ctx, quiet(), p2p.WithListenAddrs("/ip4/127.0.0.1/tcp/0"))
	if err != nil {
		t.Fatal(err)
	}
	defer friend.Close()
	sub, err := victim.Subscribe(topics.AuditTopic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Cancel()
	if err := friend.Connect(ctx, victim.AddrInfo()); err != nil {
		t.Fatal(err)
	}
	if err := friend.WaitTopicPeers(ctx, topics.AuditTopic, 1); err != nil {
		t.Fatal(err)
	}
	if err := friend.Publish(ctx, topics.AuditTopic, []byte("heard")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.Next(ctx)
	if err != nil || string(msg.Data) != "heard" || msg.GetFrom() != friend.ID() {
		t.Fatalf("victim received %v, %v; want the friend's message", msg, err)
	}

	for _, name := range []string{"made-up", "0F01020303", "0f04010101"} {
		if _, err := victim.Subscribe(name); !errors.Is(err, p2p.ErrUnknownTopic) {
			t.Errorf("Subscribe(%q) = %v, want ErrUnknownTopic", name, err)
		}
		if err := victim.Publish(ctx, name, []byte("x")); !errors.Is(err, p2p.ErrUnknownTopic) {
			t.Errorf("Publish(%q) = %v, want ErrUnknownTopic", name, err)
		}
	}
}

// sendSubscribe writes one gossipsub RPC subscribing to names.
func sendSubscribe(t *testing.T, s network.Stream, names ...string) {
	t.Helper()
	rpc := &pb.RPC{}
	for _, n := range names {
		rpc.Subscriptions = append(rpc.Subscriptions, &pb.RPC_SubOpts{Subscribe: new(true), Topicid: new(n)})
	}
	if err := p2p.WriteMsg(s, rpc); err != nil {
		t.Fatal(err)
	}
}
