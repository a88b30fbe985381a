package node

import (
	"context"
	"testing"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// TestExpiryEventsReachSubscribers: a pending object expiring is a block
// event (no transaction carries it); it must reach chain.Client.Subscribe
// through the node's transport like any transaction's event, over the
// local and the RPC transport, so providers drop the object as on a
// deletion.
func TestExpiryEventsReachSubscribers(t *testing.T) {
	ctx := testCtx(t, 60*time.Second)
	lead, member := mustKey(t), mustKey(t)
	g := chain.DefaultGenesis(lead.Account(), mustKey(t).Account())
	g.Limits.PendingObjectExpiry = 3
	n := startNode(t, t.TempDir(), WithGenesis(g))
	c := chain.NewClient(n.Transport())

	bag, reg, res := registerObject(ctx, t, c, lead, member)
	if reg.Objects[0].ExpiresAt != res.Height+3 {
		t.Fatalf("registered %+v at %d", reg, res.Height)
	}
	id, expiresAt := reg.Objects[0].ID, reg.Objects[0].ExpiresAt

	rpc, err := Dial(n.RPCAddress())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rpc.Close() })
	for name, tr := range map[string]chain.Transport{"local": n.Transport(), "rpc": rpc} {
		blocks, errc := chain.NewClient(tr).Subscribe(ctx, res.Height)
		var got *chain.ObjectsDeleted
		for be := range blocks {
			if d, ok := chain.FindEvent[chain.ObjectsDeleted](be.Events); ok {
				if be.Height != expiresAt {
					t.Fatalf("%s: expiry event at height %d; want %d", name, be.Height, expiresAt)
				}
				got = &d
				break
			}
			if be.Height > expiresAt {
				t.Fatalf("%s: no expiry event by height %d", name, be.Height)
			}
		}
		if got == nil {
			t.Fatalf("%s: subscription ended: %v", name, <-errc)
		}
		if got.Bag != bag || len(got.Objects) != 1 || got.Objects[0] != id || got.Reason != chain.DeletedExpired {
			t.Fatalf("%s: event %+v", name, got)
		}
	}
	if _, err := c.DataObject(ctx, bag, id); err == nil {
		t.Fatal("expired object still on chain")
	}
	sb, err := c.StorageBucket(ctx, 0)
	if err != nil || sb.Voucher.ObjectsUsed != 0 || sb.Voucher.SizeUsed != 0 {
		t.Fatalf("voucher after expiry %+v, %v", sb.Voucher, err)
	}
}

// registerObject has lead create a storage bucket taking new bags, member
// join and create a channel, and register one 100-byte object in it; it
// returns the channel's bag, the registration's event and its result.
func registerObject(ctx context.Context, t *testing.T, c *chain.Client, lead, member chain.Key) (chain.BagID, chain.ObjectsRegistered, chain.Committed) {
	t.Helper()
	submit := func(k chain.Key, m chain.Msg) chain.Committed {
		t.Helper()
		res, err := c.Submit(ctx, k, m)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		return res
	}
	submit(lead, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 10, SizeLimit: 1 << 20})
	mem, _ := chain.FindEvent[chain.MemberCreated](submit(member, chain.MsgCreateMember{}).Result.Events)
	ch, _ := chain.FindEvent[chain.ChannelCreated](submit(member, chain.MsgCreateChannel{Member: mem.Member}).Result.Events)
	res := submit(member, chain.MsgRegisterDataObjects{Bag: ch.Bag, Objects: []chain.ObjectSpec{
		{Size: 100, ContentID: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
	}})
	reg, ok := chain.FindEvent[chain.ObjectsRegistered](res.Result.Events)
	if !ok || len(reg.Objects) != 1 {
		t.Fatalf("no object registered in %+v", res.Result.Events)
	}
	return ch.Bag, reg, res
}
