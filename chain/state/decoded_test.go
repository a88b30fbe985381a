package state

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestDecodedTxsRemembersOnlyWhatVerified(t *testing.T) {
	k, err := chain.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	good, err := chain.SignTxForChain("c", k, 1, chain.MsgCreateMember{Handle: "a"})
	if err != nil {
		t.Fatal(err)
	}
	// The same transaction signed by another key: its signature does not
	// verify for the named signer.
	other, _ := chain.GenerateKey()
	forged, _ := chain.SignTxForChain("c", other, 1, chain.MsgCreateMember{Handle: "a"})
	forged = bytes.Replace(forged, []byte(other.Account()), []byte(k.Account()), 1)

	var c decodedTxs
	for range 2 {
		if _, _, err := c.decode(forged); err == nil {
			t.Fatal("a forged transaction decoded")
		}
	}
	if len(c.txs) != 0 {
		t.Fatalf("%d transactions remembered after failed decodes; want 0", len(c.txs))
	}
	tx, h, err := c.decode(good)
	if err == nil {
		c.keep(h, tx, len(good))
	}
	if err != nil || tx.Signer != k.Account() || len(c.txs) != 1 {
		t.Fatalf("decode = %+v, %v with %d remembered", tx, err, len(c.txs))
	}
	// Executing it takes it out of the cache, with the same result.
	again, err := c.take(good)
	if err != nil || again.Signer != tx.Signer || again.Nonce != tx.Nonce || len(c.txs) != 0 {
		t.Fatalf("decode for execution = %+v, %v with %d remembered", again, err, len(c.txs))
	}
}

func TestCheckTxRemembersOnlyAdmittedTransactions(t *testing.T) {
	h := newHarness(t)
	if r := h.block(h.sign(alice, chain.MsgCreateMember{})); r[0].Code != 0 {
		t.Fatal(r[0].Log)
	}
	sign := func(chainID string, n uint64, msg chain.Msg) []byte {
		b, err := chain.SignTxForChain(chainID, alice, n, msg)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	long := chain.MsgCreateMember{Handle: strings.Repeat("h", chain.MaxHandleLen+1)}
	for i := range 50 {
		handle := chain.MsgCreateMember{Handle: fmt.Sprint("m", i)}
		rejected := [][]byte{
			sign("another-chain", uint64(10+i), handle), // wrong chain
			sign(h.m.chainID, 1, handle),                // used nonce
			sign(h.m.chainID, uint64(10+i), long),       // fails ValidateBasic
		}
		for _, tx := range rejected {
			if err := h.m.CheckTx(tx); err == nil {
				t.Fatalf("CheckTx admitted a bad transaction (round %d)", i)
			}
		}
	}
	if n, b := h.m.decoded.size(); n != 0 || b != 0 {
		t.Fatalf("%d rejected transactions (%d bytes) remembered; want 0", n, b)
	}
	// An admitted transaction is remembered; when a block uses its nonce
	// with another transaction, the recheck rejects it and it is forgotten.
	waiting := sign(h.m.chainID, 2, chain.MsgCreateMember{Handle: "waiting"})
	if err := h.m.CheckTx(waiting); err != nil {
		t.Fatal(err)
	}
	if n, _ := h.m.decoded.size(); n != 1 {
		t.Fatalf("%d transactions remembered after one admitted; want 1", n)
	}
	if r := h.block(sign(h.m.chainID, 2, chain.MsgCreateMember{Handle: "first"})); r[0].Code != 0 {
		t.Fatal(r[0].Log)
	}
	if err := h.m.CheckTx(waiting); !errors.Is(err, chain.ErrBadNonce) {
		t.Fatalf("recheck = %v; want ErrBadNonce", err)
	}
	if n, b := h.m.decoded.size(); n != 0 || b != 0 {
		t.Fatalf("%d transactions (%d bytes) remembered after the recheck failed; want 0", n, b)
	}
}

func TestDecodedTxsBoundedByBytes(t *testing.T) {
	var c decodedTxs
	const size = chain.MaxTxBytes
	for i := range 3 * maxDecodedBytes / size {
		c.keep(sha256.Sum256([]byte(fmt.Sprint(i))), chain.Tx{}, size)
		if n, b := c.size(); b > maxDecodedBytes || n == 0 {
			t.Fatalf("after %d keeps: %d entries, %d bytes; want 1..%d bytes", i+1, n, b, maxDecodedBytes)
		}
	}
	c.keep([32]byte{1}, chain.Tx{}, maxDecodedBytes+1)
	if _, b := c.size(); b > maxDecodedBytes {
		t.Fatalf("%d bytes after keeping a transaction over the bound", b)
	}
}
