package state

import (
	"bytes"
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
		if _, err := c.decode(forged, true); err == nil {
			t.Fatal("a forged transaction decoded")
		}
	}
	if len(c.txs) != 0 {
		t.Fatalf("%d transactions remembered after failed decodes; want 0", len(c.txs))
	}
	tx, err := c.decode(good, true)
	if err != nil || tx.Signer != k.Account() || len(c.txs) != 1 {
		t.Fatalf("decode = %+v, %v with %d remembered", tx, err, len(c.txs))
	}
	// Executing it takes it out of the cache, with the same result.
	again, err := c.decode(good, false)
	if err != nil || again.Signer != tx.Signer || again.Nonce != tx.Nonce || len(c.txs) != 0 {
		t.Fatalf("decode for execution = %+v, %v with %d remembered", again, err, len(c.txs))
	}
}
