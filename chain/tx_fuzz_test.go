package chain_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// fuzzTxMsgs are the messages FuzzDecodeTx signs as seeds: every field
// shape an envelope body carries (strings, numbers, lists, nested objects).
func fuzzTxMsgs() []chain.Msg {
	return []chain.Msg{
		chain.MsgCreateMember{Handle: "alice"},
		chain.MsgCreateChannel{Member: 1, Title: "cats ✓"},
		chain.MsgUpdateBagStorageBuckets{Bag: chain.ChannelBag(7), Add: []chain.StorageBucketID{1, 2}, Remove: []chain.StorageBucketID{3}},
		chain.MsgRegisterDataObjects{Bag: chain.ChannelBag(7), Objects: []chain.ObjectSpec{
			{Size: 9000, ContentID: "bafybeifkolcwszz3bkmc343ytys3mse7aje2i55xrwsshymbr2dcbmsu6e"},
			{Size: 1, ContentID: "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"},
		}},
		chain.MsgDeleteChannel{},
	}
}

// FuzzDecodeTx feeds arbitrary bytes to DecodeTx, as a mempool peer could.
// DecodeTx must never panic, and whatever it accepts must carry a signature
// it checked: the same bytes with one signature byte changed are refused.
// Before fuzzing it checks that DecodeTx(SignTx(...)) gives back the signed
// transaction for every seed.
//
// Seeds are in testdata/fuzz/FuzzDecodeTx; run it with
//
//	go test ./chain -run '^$' -fuzz '^FuzzDecodeTx$' -fuzztime 1m
func FuzzDecodeTx(f *testing.F) {
	key, err := chain.KeyFromSeed(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	for i, m := range fuzzTxMsgs() {
		nonce := uint64(i + 1)
		b, err := chain.SignTx(key, nonce, m)
		if err != nil {
			f.Fatalf("%s: %v", m.Type(), err)
		}
		tx, err := chain.DecodeTx(b)
		if err != nil {
			f.Fatalf("%s: DecodeTx(SignTx(...)): %v", m.Type(), err)
		}
		if tx.ChainID != chain.DefaultChainID || tx.Signer != key.Account() || tx.Nonce != nonce ||
			!reflect.DeepEqual(tx.Msg, m) || !bytes.Equal(tx.Hash, chain.TxHash(b)) {
			f.Fatalf("%s: signed %+v, decoded %+v", m.Type(), m, tx)
		}
		f.Add(b)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		in := bytes.Clone(data)
		tx, err := chain.DecodeTx(data)
		if !bytes.Equal(in, data) {
			t.Fatal("DecodeTx modified its input")
		}
		if err != nil {
			return
		}
		if tx.Msg == nil || !bytes.Equal(tx.Hash, chain.TxHash(data)) {
			t.Fatalf("accepted a transaction with message %v and hash %x", tx.Msg, tx.Hash)
		}
		if _, err := tx.Signer.PublicKey(); err != nil {
			t.Fatalf("accepted a transaction from signer %q: %v", tx.Signer, err)
		}
		forged, ok := flipSignature(data)
		if !ok {
			return // not spelled as SignTx does; DecodeTx may refuse that itself
		}
		if _, err := chain.DecodeTx(forged); err == nil {
			t.Fatalf("accepted %q, and also the same with a changed signature %q", data, forged)
		}
	})
}

// flipSignature returns tx with the first byte of its signature changed
// and everything else as it was.
func flipSignature(tx []byte) ([]byte, bool) {
	var env struct {
		Signature []byte `json:"signature"`
	}
	if err := json.Unmarshal(tx, &env); err != nil || len(env.Signature) == 0 {
		return nil, false
	}
	enc := []byte(`"signature":"` + base64.StdEncoding.EncodeToString(env.Signature) + `"`)
	at := bytes.Index(tx, enc)
	if at < 0 {
		return nil, false
	}
	out := bytes.Clone(tx)
	sig := bytes.Clone(env.Signature)
	sig[0] ^= 0x80
	copy(out[at:], `"signature":"`+base64.StdEncoding.EncodeToString(sig)+`"`)
	return out, true
}
