package chain_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

func TestSignDecodeEveryMsg(t *testing.T) {
	k, _ := chain.GenerateKey()
	for i, m := range chain.AllMsgs() {
		b, err := chain.SignTxForChain("test", k, uint64(i+1), m)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		tx, err := chain.DecodeTx(b)
		if err != nil {
			t.Fatalf("%s: %v", m.Type(), err)
		}
		if tx.ChainID != "test" || tx.Signer != k.Account() || tx.Nonce != uint64(i+1) || !reflect.DeepEqual(tx.Msg, m) {
			t.Fatalf("%s: decoded %+v", m.Type(), tx)
		}
		if !bytes.Equal(tx.Hash, chain.TxHash(b)) {
			t.Fatal("hash")
		}
		// Signing is deterministic.
		again, _ := chain.SignTxForChain("test", k, uint64(i+1), m)
		if !bytes.Equal(b, again) {
			t.Fatalf("%s: signing is not deterministic", m.Type())
		}
	}
}

func TestDecodeTxRejects(t *testing.T) {
	k, _ := chain.GenerateKey()
	other, _ := chain.GenerateKey()
	msg := chain.MsgUpdateBagStorageBuckets{Bag: chain.ChannelBag(1), Add: []chain.StorageBucketID{1}}
	b, _ := chain.SignTx(k, 7, msg)
	var env map[string]json.RawMessage
	json.Unmarshal(b, &env)
	mutate := func(field, value string) []byte {
		e := map[string]json.RawMessage{}
		for k, v := range env {
			e[k] = v
		}
		e[field] = json.RawMessage(value)
		out, _ := json.Marshal(e)
		return out
	}
	for _, tc := range []struct {
		name string
		tx   []byte
		want *chain.Error
	}{
		{"chain id", mutate("chainId", `"other"`), chain.ErrBadSignature},
		{"nonce", mutate("nonce", `8`), chain.ErrBadSignature},
		{"type", mutate("type", `"delete_storage_bucket"`), chain.ErrBadSignature},
		{"body", mutate("body", `{"bag":"dynamic:channel:1","add":[2]}`), chain.ErrBadSignature},
		{"signer", mutate("signer", `"`+string(other.Account())+`"`), chain.ErrBadSignature},
		{"bad signer", mutate("signer", `"xyz"`), chain.ErrBadTx},
		{"unknown field", mutate("extra", `1`), chain.ErrBadTx},
		{"not json", []byte("hello"), chain.ErrBadTx},
		{"re-spaced", bytes.Replace(b, []byte(`,"nonce"`), []byte(`, "nonce"`), 1), chain.ErrBadTx},
		{"reordered", mutate("nonce", `7`), chain.ErrBadTx},
		{"trailing", append(append([]byte{}, b...), []byte(" {}")...), chain.ErrBadTx},
		{"too big", bytes.Repeat([]byte(" "), chain.MaxTxBytes+1), chain.ErrBadTx},
	} {
		if _, err := chain.DecodeTx(tc.tx); !errors.Is(err, tc.want) {
			t.Errorf("%s: DecodeTx = %v; want %s", tc.name, err, tc.want.Msg)
		}
	}
	if _, err := chain.SignTx(k, 1, &msg); err == nil || !strings.Contains(err.Error(), "not a pointer") {
		t.Errorf("signing a pointer msg: %v", err)
	}
	if _, err := chain.SignTx(chain.Key{}, 1, msg); err == nil {
		t.Error("signing with a zero key succeeded")
	}
}
