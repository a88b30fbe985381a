package chain

import (
	"encoding/json"
	"errors"
	"testing"
)

// signRaw signs an arbitrary type and body, as a newer or hostile client
// could.
func signRaw(k Key, typ string, body string) []byte {
	pub := k.Public()
	env := txEnvelope{ChainID: DefaultChainID, Signer: k.Account(), Nonce: 1, Type: typ, Body: json.RawMessage(body)}
	env.Signature = k.Sign(signBytes(DefaultChainID, pub, 1, typ, []byte(body)))
	b, _ := json.Marshal(env)
	return b
}

func TestDecodeTxUnknown(t *testing.T) {
	k, _ := GenerateKey()
	if _, err := DecodeTx(signRaw(k, "launch_rocket", `{}`)); !errors.Is(err, ErrUnknownMsg) {
		t.Errorf("unknown type: %v", err)
	}
	if _, err := DecodeTx(signRaw(k, "create_member", `{"handle":"a","evil":1}`)); !errors.Is(err, ErrBadTx) {
		t.Errorf("unknown body field: %v", err)
	}
	if _, err := DecodeTx(signRaw(k, "create_member", `{"handle":"a"}`)); err != nil {
		t.Errorf("valid raw tx: %v", err)
	}
}
