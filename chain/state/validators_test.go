package state

import (
	"bytes"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestSetValidator(t *testing.T) {
	v1, v2 := chain.ValidatorKey(bytes.Repeat([]byte{1}, 32)), chain.ValidatorKey(bytes.Repeat([]byte{2}, 32))
	h := newHarness(t, func(g *chain.Genesis) { g.Validators = []chain.Validator{{PubKey: v1, Power: 10}} })
	vals := func() []chain.Validator { return queryAs[[]chain.Validator](t, h.m, chain.QueryValidators, nil) }
	if got := vals(); len(got) != 1 || !bytes.Equal(got[0].PubKey, v1) || got[0].Power != 10 {
		t.Fatalf("genesis validators = %+v", got)
	}
	h.fail(alice, chain.MsgSetValidator{PubKey: v2, Power: 10}, chain.ErrUnauthorized)
	h.fail(distLead, chain.MsgSetValidator{PubKey: v2, Power: 10}, chain.ErrUnauthorized)
	h.fail(storageLead, chain.MsgSetValidator{PubKey: v1, Power: 0}, chain.ErrInvalid) // the last one
	h.fail(storageLead, chain.MsgSetValidator{PubKey: v2, Power: 0}, chain.ErrInvalid) // unknown
	h.fail(storageLead, chain.MsgSetValidator{PubKey: v2[:31], Power: 1}, chain.ErrInvalid)
	h.fail(storageLead, chain.MsgSetValidator{PubKey: v2, Power: chain.MaxValidatorPower + 1}, chain.ErrInvalid)

	ev := event[chain.ValidatorUpdated](t, h.do(storageLead, chain.MsgSetValidator{PubKey: v2, Power: 5}))
	if !bytes.Equal(ev.PubKey, v2) || ev.Power != 5 {
		t.Fatalf("event %+v", ev)
	}
	h.do(storageLead, chain.MsgSetValidator{PubKey: v1, Power: 0})
	if got := vals(); len(got) != 1 || !bytes.Equal(got[0].PubKey, v2) || got[0].Power != 5 {
		t.Fatalf("validators after removing v1 = %+v", got)
	}
}
