package verify_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/node"
	"github.com/satchel-net/satchel/chain/state"
	"github.com/satchel-net/satchel/chain/verify"
)

// twoBags registers an object in each of two channel bags of alice, both
// in one storage bucket, and returns the objects.
func twoBags(t *testing.T, ctx context.Context, n *node.Node) (a, b chain.DataObject) {
	t.Helper()
	c := chain.NewClient(n.Transport())
	if _, err := c.Submit(ctx, lead, chain.MsgCreateStorageBucket{AcceptingNewBags: true, ObjectsLimit: 10, SizeLimit: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	res, err := c.Submit(ctx, alice, chain.MsgCreateMember{Handle: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	m := event[chain.MemberCreated](t, res).Member
	var objs []chain.DataObject
	for i, cid := range []string{
		"bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
		"bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e",
	} {
		res, err := c.Submit(ctx, alice, chain.MsgCreateChannel{Member: m})
		if err != nil {
			t.Fatal(err)
		}
		bag := chain.ChannelBag(event[chain.ChannelCreated](t, res).Channel)
		res, err = c.Submit(ctx, alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: uint64(10 + i), ContentID: cid}}})
		if err != nil {
			t.Fatalf("register in %s: %v", bag, err)
		}
		objs = append(objs, event[chain.ObjectsRegistered](t, res).Objects[0])
	}
	return objs[0], objs[1]
}

// TestObjectByIDIsProven: the object-ID index answers through a verifying
// transport, locally and over RPC, and a proven "not found" is an
// ErrObjectNotFound, not a lie.
func TestObjectByIDIsProven(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	a, b := twoBags(t, ctx, n)
	remote, err := node.Dial(n.RPCAddress())
	if err != nil {
		t.Fatal(err)
	}
	defer remote.Close()
	for name, tr := range map[string]chain.Transport{"local": n.Transport(), "remote": remote} {
		t.Run(name, func(t *testing.T) {
			c := chain.NewClient(verified(t, n, tr, name))
			// The other party's registrations are a block behind a
			// proving transport's answers at most.
			if _, err := c.WaitForNextBlock(ctx); err != nil {
				t.Fatal(err)
			}
			for _, want := range []chain.DataObject{a, b} {
				got, err := c.ObjectByID(ctx, want.ID)
				if err != nil || got != want {
					t.Fatalf("ObjectByID(%d) = %+v, %v; want %+v", want.ID, got, err, want)
				}
			}
			_, err := c.ObjectByID(ctx, b.ID+100)
			if !errors.Is(err, chain.ErrObjectNotFound) || errors.Is(err, verify.ErrLyingEndpoint) {
				t.Fatalf("ObjectByID(unknown) = %v; want ErrObjectNotFound", err)
			}
		})
	}
}

// TestObjectByIDLiesAreRefused: an endpoint cannot send the client to
// another bag, hide an object, or deny it without proof.
func TestObjectByIDLiesAreRefused(t *testing.T) {
	n := startNode(t)
	ctx := testCtx(t)
	a, b := twoBags(t, ctx, n)
	if _, err := chain.NewClient(n.Transport()).WaitForNextBlock(ctx); err != nil {
		t.Fatal(err)
	}
	index := func(w *state.Witness) *state.ProvenScan {
		for i, s := range w.Scans {
			if bytes.HasPrefix(s.Prefix, []byte("s/ix/obj/")) {
				return &w.Scans[i]
			}
		}
		t.Errorf("the witness scans no object-ID index entry")
		return &state.ProvenScan{}
	}
	src := n.Transport().(verify.Source)
	cases := map[string]*liar{
		"other bag": {alterAnswer: func(w *state.Witness) {
			if s := index(w); len(s.Keys) == 1 {
				s.Keys[0] = bytes.Replace(s.Keys[0], []byte(a.Bag), []byte(b.Bag), 1)
			}
		}},
		"hidden entry": {alterAnswer: func(w *state.Witness) {
			s := index(w)
			s.Keys, s.Values, s.Paths, s.Shared, s.Next = nil, nil, nil, nil, nil
		}},
		"altered object": {alterAnswer: func(w *state.Witness) {
			for i, g := range w.Gets {
				if g.Found {
					w.Gets[i].Value = bytes.Replace(g.Value, []byte(a.ContentID), []byte(b.ContentID), 1)
				}
			}
		}},
		"bare not found": {bareError: chain.Errorf(chain.ErrObjectNotFound, "data object %d is in no bag", a.ID)},
	}
	for name, l := range cases {
		t.Run(name, func(t *testing.T) {
			l.Transport, l.src = n.Transport(), src
			c := chain.NewClient(verified(t, n, l, "liar.example:26657"))
			obj, err := c.ObjectByID(ctx, a.ID)
			if !errors.Is(err, verify.ErrLyingEndpoint) {
				t.Fatalf("ObjectByID = %+v, %v; want ErrLyingEndpoint", obj, err)
			}
		})
	}
}
