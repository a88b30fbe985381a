package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/chain/state"
)

func testGenesis(t testing.TB) chain.Genesis {
	t.Helper()
	sl, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	dl, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	g := chain.DefaultGenesis(sl.Account(), dl.Account())
	// Member creation is the free transaction these tests and benchmarks
	// submit by the hundred per block.
	g.Limits.MembersPerBlock = 1 << 20
	return g
}

func mustKey(t testing.TB) chain.Key {
	t.Helper()
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSign(t testing.TB, k chain.Key, nonce uint64, msg chain.Msg) []byte {
	t.Helper()
	tx, err := chain.SignTx(k, nonce, msg)
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func memoryMachine(t testing.TB) *state.Machine {
	t.Helper()
	m, err := state.NewMemory(state.WithLogger(discardLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestAppInitChain(t *testing.T) {
	ctx := context.Background()
	g := testGenesis(t)
	gs, _ := json.Marshal(g)
	tests := []struct {
		name    string
		chainID string
		state   []byte
		wantErr bool
	}{
		{"ok", g.ChainID, gs, false},
		{"no app state", g.ChainID, nil, true},
		{"not a genesis", g.ChainID, []byte(`[1,2]`), true},
		{"chain ID differs", "other", gs, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := NewApp(memoryMachine(t), nil)
			res, err := app.InitChain(ctx, &abci.InitChainRequest{ChainId: tt.chainID, Time: time.Now(), AppStateBytes: tt.state})
			if (err != nil) != tt.wantErr {
				t.Fatalf("InitChain error = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && len(res.AppHash) == 0 {
				t.Fatal("InitChain returned no app hash")
			}
		})
	}
}

func TestAppBlockLifecycle(t *testing.T) {
	ctx := context.Background()
	app := NewApp(memoryMachine(t), nil)
	g := testGenesis(t)
	gs, _ := json.Marshal(g)
	if _, err := app.InitChain(ctx, &abci.InitChainRequest{ChainId: g.ChainID, Time: time.Now(), AppStateBytes: gs}); err != nil {
		t.Fatal(err)
	}
	k := mustKey(t)

	// CheckTx: a good transaction, and garbage with its stable code.
	good := mustSign(t, k, 1, chain.MsgCreateMember{Handle: "alice"})
	if res, _ := app.CheckTx(ctx, &abci.CheckTxRequest{Tx: good}); res.Code != abci.CodeTypeOK {
		t.Fatalf("CheckTx(good) = %d %s", res.Code, res.Log)
	}
	res, _ := app.CheckTx(ctx, &abci.CheckTxRequest{Tx: []byte("garbage")})
	if res.Code != chain.CodeBadTx || res.Log == "" || res.Codespace != Codespace {
		t.Fatalf("CheckTx(garbage) = %d %q, want code %d with a log", res.Code, res.Log, chain.CodeBadTx)
	}

	// PrepareProposal honours MaxTxBytes; ProcessProposal accepts.
	bad := mustSign(t, k, 2, chain.MsgCreateChannel{Member: 999})
	txs := [][]byte{good, bad}
	pp, _ := app.PrepareProposal(ctx, &abci.PrepareProposalRequest{Txs: txs, MaxTxBytes: int64(len(good) + len(bad))})
	if len(pp.Txs) != 2 {
		t.Fatalf("PrepareProposal kept %d txs, want 2", len(pp.Txs))
	}
	pp, _ = app.PrepareProposal(ctx, &abci.PrepareProposalRequest{Txs: txs, MaxTxBytes: int64(len(good) + len(bad) - 1)})
	if len(pp.Txs) != 1 {
		t.Fatalf("PrepareProposal kept %d txs under a smaller MaxTxBytes, want 1", len(pp.Txs))
	}
	proc, _ := app.ProcessProposal(ctx, &abci.ProcessProposalRequest{Txs: txs})
	if proc.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
		t.Fatalf("ProcessProposal = %v", proc.Status)
	}

	// FinalizeBlock: one success with its events, one failure with its code.
	fb, err := app.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: 1, Time: time.Now(), Hash: make([]byte, 32), Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	if len(fb.TxResults) != 2 || len(fb.AppHash) == 0 {
		t.Fatalf("FinalizeBlock = %d results, app hash %X", len(fb.TxResults), fb.AppHash)
	}
	ok, failed := fb.TxResults[0], fb.TxResults[1]
	if ok.Code != 0 || len(ok.Events) == 0 || ok.Events[0].Type != EventType {
		t.Fatalf("success result = %+v", ok)
	}
	evs, err := decodeEvents(ok.Events)
	if err != nil || len(evs) == 0 || evs[0].Type != "MemberCreated" {
		t.Fatalf("decoded events = %+v, %v", evs, err)
	}
	if failed.Code == 0 || failed.Log == "" || failed.Codespace != Codespace || len(failed.Events) != 0 {
		t.Fatalf("failed result = %+v", failed)
	}
	if !errors.Is(chain.ErrorFromCode(failed.Code, failed.Log), chain.ErrNotFound) {
		t.Fatalf("failed code %d (%s) does not map back to a not-found error", failed.Code, failed.Log)
	}

	// Nothing is visible before Commit; Info and Query see it after.
	info, _ := app.Info(ctx, &abci.InfoRequest{})
	if info.LastBlockHeight != 0 {
		t.Fatalf("height before commit = %d", info.LastBlockHeight)
	}
	cr, err := app.Commit(ctx, &abci.CommitRequest{})
	if err != nil || cr.RetainHeight != 0 {
		t.Fatalf("Commit = %+v, %v", cr, err)
	}
	info, _ = app.Info(ctx, &abci.InfoRequest{})
	if info.LastBlockHeight != 1 || !bytes.Equal(info.LastBlockAppHash, fb.AppHash) || info.AppVersion != AppVersion {
		t.Fatalf("Info after commit = %+v, want height 1 app hash %X", info, fb.AppHash)
	}
	arg, _ := json.Marshal(k.Account())
	q, _ := app.Query(ctx, &abci.QueryRequest{Path: chain.QueryAccount, Data: arg})
	var acct chain.AccountInfo
	if q.Code != 0 || json.Unmarshal(q.Value, &acct) != nil || acct.Nonce != 2 || q.Height != 1 {
		t.Fatalf("Query(account) = %+v (%+v)", q, acct)
	}

	// The committed nonce now rejects a replay in CheckTx.
	res, _ = app.CheckTx(ctx, &abci.CheckTxRequest{Tx: good})
	if res.Code != chain.CodeBadNonce {
		t.Fatalf("CheckTx(replay) = %d %s, want %d", res.Code, res.Log, chain.CodeBadNonce)
	}

	// Query errors carry their stable code and message.
	q, _ = app.Query(ctx, &abci.QueryRequest{Path: "/nope"})
	if q.Code != chain.CodeUnknownQuery || q.Log == "" {
		t.Fatalf("Query(/nope) = %d %q", q.Code, q.Log)
	}

	// After close every call reports the stop instead of touching the machine.
	if err := app.close(); err != nil {
		t.Fatal(err)
	}
	if q, _ := app.Query(ctx, &abci.QueryRequest{Path: chain.QueryInfo}); q.Code == 0 {
		t.Fatal("Query after close succeeded")
	}
	if _, err := app.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: 2}); !errors.Is(err, ErrStopped) {
		t.Fatalf("FinalizeBlock after close: %v", err)
	}
}

// PrepareProposal leaves out what the machine's admission would not admit
// into the block (a lead's message from another account, a second
// transaction with one nonce). ProcessProposal refuses a proposal holding
// them from state.VersionAdmission on, and accepts what PrepareProposal
// proposes; on an older chain it accepts both, and the block records them
// as failed.
func TestAppProposalsJudgeAdmission(t *testing.T) {
	for _, v := range []uint64{state.VersionObjectIndex, state.VersionAdmission} {
		t.Run(fmt.Sprint("version ", v), func(t *testing.T) {
			ctx := context.Background()
			app := NewApp(memoryMachine(t), nil)
			g := testGenesis(t)
			gs, _ := json.Marshal(g)
			params := &cmtproto.ConsensusParams{Version: &cmtproto.VersionParams{App: v}}
			if _, err := app.InitChain(ctx, &abci.InitChainRequest{ChainId: g.ChainID, Time: time.Now(), AppStateBytes: gs, ConsensusParams: params}); err != nil {
				t.Fatal(err)
			}
			k, other := mustKey(t), mustKey(t)
			good := mustSign(t, k, 1, chain.MsgCreateMember{Handle: "alice"})
			sameNonce := mustSign(t, k, 1, chain.MsgCreateMember{Handle: "bob"})
			notLead := mustSign(t, other, 1, chain.MsgSetUploadingBlocked{Blocked: true})
			next := mustSign(t, k, 2, chain.MsgCreateChannel{Member: 0})
			txs := [][]byte{good, sameNonce, notLead, next}
			pp, err := app.PrepareProposal(ctx, &abci.PrepareProposalRequest{Txs: txs, MaxTxBytes: 1 << 20})
			if err != nil {
				t.Fatal(err)
			}
			if len(pp.Txs) != 2 || !bytes.Equal(pp.Txs[0], good) || !bytes.Equal(pp.Txs[1], next) {
				t.Fatalf("PrepareProposal kept %d txs; want the create_member and its channel", len(pp.Txs))
			}
			if proc, _ := app.ProcessProposal(ctx, &abci.ProcessProposalRequest{Txs: pp.Txs}); proc.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
				t.Fatalf("ProcessProposal(prepared) = %v", proc.Status)
			}
			want := abci.PROCESS_PROPOSAL_STATUS_REJECT
			if v < state.VersionAdmission {
				want = abci.PROCESS_PROPOSAL_STATUS_ACCEPT
			}
			if proc, _ := app.ProcessProposal(ctx, &abci.ProcessProposalRequest{Txs: txs}); proc.Status != want {
				t.Fatalf("ProcessProposal(unfiltered) = %v; want %v", proc.Status, want)
			}
			if v >= state.VersionAdmission {
				return
			}
			fb, err := app.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: 1, Time: time.Now(), Hash: make([]byte, 32), Txs: txs})
			if err != nil {
				t.Fatal(err)
			}
			for i, want := range []bool{true, false, false} {
				if ok := fb.TxResults[i].Code == 0; ok != want {
					t.Fatalf("tx %d: code %d (%s)", i, fb.TxResults[i].Code, fb.TxResults[i].Log)
				}
			}
		})
	}
}

func TestEventsRoundTrip(t *testing.T) {
	in := []chain.Event{
		{Type: "BagCreated", Data: json.RawMessage(`{"bag":"dynamic:channel:1"}`)},
		{Type: "ObjectsAccepted", Data: json.RawMessage(`{"ids":[1,2]}`)},
	}
	enc, err := encodeEvents(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range enc {
		for _, a := range e.Attributes {
			if a.Key == AttrEvent && a.Index {
				t.Error("event JSON attribute is indexed")
			}
			if a.Key == AttrType && !a.Index {
				t.Error("event type attribute is not indexed")
			}
		}
	}
	// Foreign events are skipped.
	enc = append(enc, abci.Event{Type: "tx", Attributes: []abci.EventAttribute{{Key: "acc_seq", Value: "x"}}})
	out, err := decodeEvents(enc)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(in) {
		t.Fatalf("decoded %d events, want %d", len(out), len(in))
	}
	for i := range in {
		if out[i].Type != in[i].Type || !bytes.Equal(out[i].Data, in[i].Data) {
			t.Errorf("event %d = %+v, want %+v", i, out[i], in[i])
		}
	}
}

// ProcessProposal refuses a proposal holding the storage lead's
// cancel_app_version_upgrade below state.VersionUpgradeCancel — as the
// releases before it, which cannot decode it, do — and accepts it from
// that version on.
func TestAppProposalsWithAnUpgradeCancel(t *testing.T) {
	for _, v := range []uint64{state.VersionObjectIndex, state.VersionAdmission, state.VersionUpgradeCancel} {
		t.Run(fmt.Sprint("version ", v), func(t *testing.T) {
			ctx := context.Background()
			app := NewApp(memoryMachine(t), nil)
			lead := mustKey(t)
			g := chain.DefaultGenesis(lead.Account(), mustKey(t).Account())
			gs, _ := json.Marshal(g)
			params := &cmtproto.ConsensusParams{Version: &cmtproto.VersionParams{App: v}}
			if _, err := app.InitChain(ctx, &abci.InitChainRequest{ChainId: g.ChainID, Time: time.Now(), AppStateBytes: gs, ConsensusParams: params}); err != nil {
				t.Fatal(err)
			}
			txs := [][]byte{mustSign(t, lead, 1, chain.MsgCancelAppVersionUpgrade{Version: state.Version + 1, Height: 100})}
			want := abci.PROCESS_PROPOSAL_STATUS_REJECT
			if v >= state.VersionUpgradeCancel {
				want = abci.PROCESS_PROPOSAL_STATUS_ACCEPT
			}
			if proc, _ := app.ProcessProposal(ctx, &abci.ProcessProposalRequest{Txs: txs}); proc.Status != want {
				t.Fatalf("ProcessProposal(cancel) = %v; want %v", proc.Status, want)
			}
		})
	}
}

// Through the ABCI app, a cancel of the upgrade scheduled at H is taken
// by CheckTx and ProcessProposal for block H−2, and refused by both for
// block H−1, naming H−2 as the last block that may cancel; a block H−1
// that holds it anyway fails the transaction and keeps the plan.
func TestAppRefusesALateUpgradeCancel(t *testing.T) {
	ctx := context.Background()
	app := NewApp(memoryMachine(t), nil)
	lead := mustKey(t)
	g := chain.DefaultGenesis(lead.Account(), mustKey(t).Account())
	gs, _ := json.Marshal(g)
	if _, err := app.InitChain(ctx, &abci.InitChainRequest{ChainId: g.ChainID, Time: time.Now(), AppStateBytes: gs}); err != nil {
		t.Fatal(err)
	}
	var height int64
	block := func(txs ...[]byte) []*abci.ExecTxResult {
		t.Helper()
		height++
		fb, err := app.FinalizeBlock(ctx, &abci.FinalizeBlockRequest{Height: height, Time: time.Now(), Hash: make([]byte, 32), Txs: txs})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := app.Commit(ctx, &abci.CommitRequest{}); err != nil {
			t.Fatal(err)
		}
		return fb.TxResults
	}
	at := int64(1 + chain.MinUpgradeDelay)
	plan := chain.MsgUpgradeAppVersion{Version: state.Version + 1, Height: at}
	if r := block(mustSign(t, lead, 1, plan)); r[0].Code != abci.CodeTypeOK {
		t.Fatalf("schedule: %s", r[0].Log)
	}
	cancel := mustSign(t, lead, 2, chain.MsgCancelAppVersionUpgrade{Version: plan.Version, Height: at})
	for height < at-3 {
		block()
	}
	if res, _ := app.CheckTx(ctx, &abci.CheckTxRequest{Tx: cancel}); res.Code != abci.CodeTypeOK {
		t.Fatalf("CheckTx(cancel) for block %d: %s", height+1, res.Log)
	}
	if proc, _ := app.ProcessProposal(ctx, &abci.ProcessProposalRequest{Height: height + 1, Txs: [][]byte{cancel}}); proc.Status != abci.PROCESS_PROPOSAL_STATUS_ACCEPT {
		t.Fatalf("ProcessProposal(cancel) for block %d = %v; want accepted", height+1, proc.Status)
	}
	block()
	tooLate := fmt.Sprintf("must be in block %d or earlier", at-2)
	if res, _ := app.CheckTx(ctx, &abci.CheckTxRequest{Tx: cancel}); res.Code != chain.ErrInvalid.Code || !strings.Contains(res.Log, tooLate) {
		t.Fatalf("CheckTx(cancel) for block %d: code %d %q; want ErrInvalid naming %q", height+1, res.Code, res.Log, tooLate)
	}
	if proc, _ := app.ProcessProposal(ctx, &abci.ProcessProposalRequest{Height: height + 1, Txs: [][]byte{cancel}}); proc.Status != abci.PROCESS_PROPOSAL_STATUS_REJECT {
		t.Fatalf("ProcessProposal(cancel) for block %d = %v; want rejected", height+1, proc.Status)
	}
	if r := block(cancel); r[0].Code != chain.ErrInvalid.Code || !strings.Contains(r[0].Log, tooLate) {
		t.Fatalf("cancel in block %d: code %d %q; want ErrInvalid naming %q", height, r[0].Code, r[0].Log, tooLate)
	}
	q, err := app.Query(ctx, &abci.QueryRequest{Path: chain.QueryAppVersion})
	var info chain.AppVersionInfo
	if err != nil || json.Unmarshal(q.Value, &info) != nil || info.Upgrade == nil || info.Upgrade.Height != at {
		t.Fatalf("plan after the late cancel: %+v (%v); want the upgrade at %d", info, err, at)
	}
}
