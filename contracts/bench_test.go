package contracts

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// BenchmarkNegotiation runs proposals on a mocknet of 100 hosts with 50 ms
// links (an RTT of 100 ms) and the real chain: 20 providers (the bag in 10
// of their buckets) and 79 more hosts subscribed to the topic, one renter.
// It reports, as multiples of the link RTT measured by the configuration
// of the same run, the time from publishing to the first offer, to the
// Redundancy-th and to the last authorised offer, and to the end of the
// negotiation (offers collected, the best consigned), plus the gossip
// messages each host received per proposal.
func BenchmarkNegotiation(b *testing.B) {
	const hosts, providers, bagBuckets, renterHost, latency = 100, 20, 10, 99, 50 * time.Millisecond
	const rtt = 2 * latency
	var recv atomic.Int64
	w := newWorldWith(b, hosts, providers, bagBuckets, latency, false, func(int) pubsub.RawTracer { return &countTracer{n: &recv} })
	for i := range providers {
		w.responder(i, "", topicA)
	}
	subs := indexes(0, providers)
	for i := providers; i < renterHost; i++ {
		g := NewGossip(w.net.Host(i), w.chain, quiet())
		sub, release, err := g.Subscribe(topicA)
		must(b, err)
		go drain(sub)
		b.Cleanup(release)
		subs = append(subs, i)
	}
	for _, i := range subs {
		w.waitTopicPeers(i, topicA, 1)
	}
	w.waitTopicPeers(renterHost, topicA, 1)
	renter := w.renterAt(renterHost)
	ctx := context.Background()

	var first, nth, last, whole []time.Duration
	b.ResetTimer()
	for range b.N {
		recv.Store(0)
		req := w.request(5<<20, 60*day, 3)
		req.Window, req.Enough = 30*time.Second, bagBuckets
		start := time.Now()
		n, err := renter.renter.Negotiate(ctx, req)
		whole = append(whole, time.Since(start))
		if err != nil {
			b.Fatal(err)
		}
		var after []time.Duration
		for _, o := range n.Offers {
			if o.Err == nil {
				after = append(after, o.After)
			}
		}
		slices.Sort(after)
		if len(after) < bagBuckets {
			b.Fatalf("%d usable offers, want %d", len(after), bagBuckets)
		}
		first, nth, last = append(first, after[0]), append(nth, after[2]), append(last, after[len(after)-1])
	}
	b.StopTimer()
	b.ReportMetric(median(first)/float64(rtt), "rtt-to-first-offer")
	b.ReportMetric(median(nth)/float64(rtt), "rtt-to-3rd-offer")
	b.ReportMetric(median(last)/float64(rtt), "rtt-to-10th-offer")
	b.ReportMetric(median(whole)/float64(rtt), "rtt-negotiation")
	b.ReportMetric(float64(recv.Load())/float64(hosts), "gossip-msgs/host/proposal")
}

func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return float64(s[len(s)/2])
}

func drain(sub *pubsub.Subscription) {
	for {
		if _, err := sub.Next(context.Background()); err != nil {
			return
		}
	}
}

// countTracer counts the published messages a host receives, duplicates
// included, on the contract topic.
type countTracer struct{ n *atomic.Int64 }

func (c *countTracer) RecvRPC(rpc *pubsub.RPC) {
	for _, m := range rpc.GetPublish() {
		if m.GetTopic() == topicA.String() {
			c.n.Add(1)
		}
	}
}
func (*countTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (*countTracer) OnClosedOutboundStream(peer.ID)           {}
func (*countTracer) Join(string)                              {}
func (*countTracer) Leave(string)                             {}
func (*countTracer) Graft(peer.ID, string)                    {}
func (*countTracer) Prune(peer.ID, string)                    {}
func (*countTracer) ValidateMessage(*pubsub.Message)          {}
func (*countTracer) DeliverMessage(*pubsub.Message)           {}
func (*countTracer) RejectMessage(*pubsub.Message, string)    {}
func (*countTracer) DuplicateMessage(*pubsub.Message)         {}
func (*countTracer) ThrottlePeer(peer.ID)                     {}
func (*countTracer) SendRPC(*pubsub.RPC, peer.ID)             {}
func (*countTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (*countTracer) UndeliverableMessage(*pubsub.Message)     {}
