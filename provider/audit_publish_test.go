package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/time/rate"
	"google.golang.org/protobuf/proto"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/metricsutil"
	"github.com/satchel-net/satchel/p2p/testnet"
	"github.com/satchel-net/satchel/protocol/audit"
	"github.com/satchel-net/satchel/protocol/audit/pb"
)

// An auditor publishes a result only while its time (its challenge's) is
// within audit.ResultWindow less publishMargin (for other nodes' clock
// skew): one its publish pace would hold past that is dropped at once and
// counted, not waited for (the audit loop would stand still) and then
// ignored by nodes whose clocks are ahead. The results before and after
// it are published as usual, the result of a timed-out audit too.
func TestAuditResultPastWindowNotPublished(t *testing.T) {
	net := testnet.NewMock(t, 2, 0)
	node, listener := net.Host(0), net.Host(1)
	bs, _ := heldFixture(t)
	reg := prometheus.NewRegistry()
	s := auditNode(t, node, bs, newFakeChain(), WithMetrics(reg))
	sub, err := listener.Subscribe(audit.Topic)
	if err != nil {
		t.Fatal(err)
	}
	joinAudits(t, node, listener)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	bag := chain.ChannelBag(1)
	prov := chainPeer{ID: listener.ID(), Bucket: 2}
	record := func(object uint64, challenged time.Time) {
		out := audit.Outcome{Err: errors.New("chunk 1 missing"), Challenge: &pb.Challenge{
			Bag: string(bag), Object: object, Nonce: []byte("a nonce of sixteen+"), TimeUnixMs: challenged.UnixMilli()}}
		s.recordAudit(ctx, prov, bag, object, out)
	}
	// heard returns the next result the listener hears of object from
	// on (earlier ones are late copies of the warm-up below).
	heard := func(ctx context.Context, from uint64) *pb.AuditResult {
		t.Helper()
		for {
			msg, err := sub.Next(ctx)
			if err != nil {
				return nil
			}
			var sr pb.SignedResult
			var r pb.AuditResult
			if err := proto.Unmarshal(msg.Data, &sr); err != nil || proto.Unmarshal(sr.Result, &r) != nil {
				t.Fatalf("a result that does not decode: %v", err)
			}
			if r.Object >= from {
				return &r
			}
		}
	}
	counter := func(name string) float64 {
		v, err := metricsutil.Counter(reg, "satchel_provider_audit_"+name+"_total")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}

	// Published (a new result each time) until the listener hears one: a
	// subscriber's stream may open after its subscription was heard.
	for obj := uint64(1); ; obj++ {
		record(obj, time.Now())
		wctx, wcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		r := heard(wctx, 1)
		wcancel()
		if r != nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the listener heard no result")
		}
	}
	// One result every 45 s: the next goes at once, the one after would
	// wait past its window.
	s.audits.publishPace = rate.NewLimiter(rate.Every(45*time.Second), 1)
	record(100, time.Now())
	if r := heard(ctx, 100); r == nil || r.Object != 100 {
		t.Fatalf("heard %v, want object 100", r)
	}
	// Challenged 10 s ago: its turn would come 5 s before its window
	// closes, within publishMargin, too late for a node whose clock is
	// ahead. Before session 15 the loop waited for such a result and
	// published it; now it is dropped at once and counted.
	record(101, time.Now().Add(-10*time.Second))
	if n := counter("results_unpublished"); n != 1 {
		t.Fatalf("%v results counted unpublished, want 1", n)
	}
	if n := counter("results_stale"); n != 0 {
		t.Fatalf("the node's own validator saw %v stale results: the late one was published", n)
	}
	s.audits.publishPace.SetLimit(rate.Inf)
	record(102, time.Now())
	if r := heard(ctx, 100); r == nil || r.Object != 102 {
		t.Fatalf("heard %v after the result past its window, want object 102", r)
	}
	// The result of an audit that timed out (recorded AnswerTimeout after
	// its challenge) is still published: the margin leaves it time.
	record(103, time.Now().Add(-audit.AnswerTimeout-time.Second))
	if r := heard(ctx, 100); r == nil || r.Object != 103 {
		t.Fatalf("heard %v, want object 103, the result of a timed-out audit", r)
	}
	if n := counter("results_unpublished"); n != 1 {
		t.Fatalf("%v results counted unpublished, want only the one past its margin", n)
	}
}
