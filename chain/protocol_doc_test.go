package chain_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// The worked example of docs/PROTOCOL.md ("Worked example"): the exact bytes
// a non-Go client must produce to sign a transaction. The test rebuilds the
// sign bytes from the layout the document gives, not from the package's own
// code, checks that the package signs and encodes exactly the documented
// bytes, and that the document still shows them.
const (
	docSeedHex    = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	docAccount    = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
	docBody       = `{"handle":"alice"}`
	docSignBytes  = "7361746368656c2d74782f76310a077361746368656c03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b800000000000000010d6372656174655f6d656d626572127b2268616e646c65223a22616c696365227d"
	docSignature  = "EnbbBnL5KV+PLIvHu0xwqSvEJ8gtyRl/ntf5KrwDkcdgLlptkau99GJYNRk6pkwjP36eVqGrLSHvcGe6kRljAg=="
	docTx         = `{"chainId":"satchel","signer":"03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8","nonce":1,"type":"create_member","body":{"handle":"alice"},"signature":"EnbbBnL5KV+PLIvHu0xwqSvEJ8gtyRl/ntf5KrwDkcdgLlptkau99GJYNRk6pkwjP36eVqGrLSHvcGe6kRljAg=="}`
	docTxHash     = "88E89265E9002F16E2821376F8555F751A7C4CF6F716C9501470FF1850E9046A"
	docProtocolMD = "../docs/PROTOCOL.md"
)

// docLayoutSignBytes builds the sign bytes as the document describes them.
func docLayoutSignBytes(chainID string, pub []byte, nonce uint64, typ, body string) []byte {
	var b []byte
	b = append(b, "satchel-tx/v1\n"...)
	b = binary.AppendUvarint(b, uint64(len(chainID)))
	b = append(b, chainID...)
	b = append(b, pub...)
	b = binary.BigEndian.AppendUint64(b, nonce)
	b = binary.AppendUvarint(b, uint64(len(typ)))
	b = append(b, typ...)
	b = binary.AppendUvarint(b, uint64(len(body)))
	b = append(b, body...)
	return b
}

func TestProtocolDocWorkedExample(t *testing.T) {
	seed, _ := hex.DecodeString(docSeedHex)
	key, err := chain.KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	if got := key.Account().String(); got != docAccount {
		t.Fatalf("account = %s, document says %s", got, docAccount)
	}
	sb := docLayoutSignBytes("satchel", key.Public(), 1, "create_member", docBody)
	if got := hex.EncodeToString(sb); got != docSignBytes {
		t.Fatalf("sign bytes from the documented layout:\n%s\ndocument says:\n%s", got, docSignBytes)
	}
	sig, _ := base64.StdEncoding.DecodeString(docSignature)
	if !ed25519.Verify(key.Public(), sb, sig) {
		t.Fatal("the documented signature does not verify over the documented sign bytes")
	}
	if got := base64.StdEncoding.EncodeToString(ed25519.Sign(key.PrivateKey(), sb)); got != docSignature {
		t.Fatalf("ed25519 over the sign bytes = %s, document says %s", got, docSignature)
	}

	tx, err := chain.SignTxForChain("satchel", key, 1, chain.MsgCreateMember{Handle: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if len(tx) != 259 {
		t.Fatalf("transaction is %d bytes, document says 259", len(tx))
	}
	if string(tx) != docTx {
		t.Fatalf("SignTxForChain =\n%s\ndocument says\n%s", tx, docTx)
	}
	if got := strings.ToUpper(hex.EncodeToString(chain.TxHash(tx))); got != docTxHash {
		t.Fatalf("tx hash = %s, document says %s", got, docTxHash)
	}
	dec, err := chain.DecodeTx([]byte(docTx))
	if err != nil {
		t.Fatalf("the documented transaction does not decode: %v", err)
	}
	if dec.Nonce != 1 || dec.Signer != docAccount || dec.Msg != (chain.MsgCreateMember{Handle: "alice"}) {
		t.Fatalf("decoded %+v", dec)
	}

	md, err := os.ReadFile(docProtocolMD)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"exactly these 259 bytes", docSeedHex, docAccount, docSignBytes, docSignature, docTx, docTxHash,
		base64.StdEncoding.EncodeToString([]byte(docTx))} {
		if !bytes.Contains(md, []byte(s)) {
			t.Errorf("docs/PROTOCOL.md no longer shows %q", s)
		}
	}
}

// The canonical-form rule the document states: the same signed fields,
// spelled differently (spaces, another field order, a body with a space),
// are refused as ErrBadTx even though the signature would verify.
func TestProtocolDocCanonicalForm(t *testing.T) {
	respaced := strings.Replace(docTx, `"nonce":1,`, `"nonce": 1,`, 1)
	reordered := strings.Replace(docTx, `{"chainId":"satchel","signer":"`+docAccount+`",`,
		`{"signer":"`+docAccount+`","chainId":"satchel",`, 1)
	for name, tx := range map[string]string{"respaced": respaced, "reordered": reordered} {
		if tx == docTx {
			t.Fatalf("%s: the variant is unchanged", name)
		}
		if _, err := chain.DecodeTx([]byte(tx)); !errors.Is(err, chain.ErrBadTx) {
			t.Errorf("%s: DecodeTx = %v, want ErrBadTx", name, err)
		}
	}
	// A body with a space: the signature covers the spaced bytes, but the
	// envelope is not canonical (encoding/json compacts a raw body).
	seed, _ := hex.DecodeString(docSeedHex)
	key, _ := chain.KeyFromSeed(seed)
	body := `{"handle": "alice"}`
	sig := ed25519.Sign(key.PrivateKey(), docLayoutSignBytes("satchel", key.Public(), 1, "create_member", body))
	tx := `{"chainId":"satchel","signer":"` + docAccount + `","nonce":1,"type":"create_member","body":` + body +
		`,"signature":"` + base64.StdEncoding.EncodeToString(sig) + `"}`
	if _, err := chain.DecodeTx([]byte(tx)); !errors.Is(err, chain.ErrBadTx) {
		t.Errorf("spaced body: DecodeTx = %v, want ErrBadTx", err)
	}
	// Strings are escaped as encoding/json does: '<' only as \u003c. The
	// same message with a raw '<', validly signed, is refused.
	esc, err := chain.SignTxForChain("satchel", key, 1, chain.MsgCreateMember{Handle: "a<b"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(esc), `"body":{"handle":"a\u003cb"}`) {
		t.Errorf("escaped body: %s", esc)
	}
	raw := `{"handle":"a<b"}`
	sigRaw := ed25519.Sign(key.PrivateKey(), docLayoutSignBytes("satchel", key.Public(), 1, "create_member", raw))
	txRaw := `{"chainId":"satchel","signer":"` + docAccount + `","nonce":1,"type":"create_member","body":` + raw +
		`,"signature":"` + base64.StdEncoding.EncodeToString(sigRaw) + `"}`
	if _, err := chain.DecodeTx([]byte(txRaw)); !errors.Is(err, chain.ErrBadTx) {
		t.Errorf("raw '<' in body: DecodeTx = %v, want ErrBadTx", err)
	}
	// Nonce 0 can never be used: it is refused by the chain, not here; the
	// envelope itself decodes.
	sig0 := ed25519.Sign(key.PrivateKey(), docLayoutSignBytes("satchel", key.Public(), 0, "create_member", docBody))
	tx0 := `{"chainId":"satchel","signer":"` + docAccount + `","nonce":0,"type":"create_member","body":` + docBody +
		`,"signature":"` + base64.StdEncoding.EncodeToString(sig0) + `"}`
	if _, err := chain.DecodeTx([]byte(tx0)); err != nil {
		t.Errorf("nonce 0 envelope: %v", err)
	}
}

// Every message type the chain decodes has its row in docs/PROTOCOL.md's
// table of message types, so another implementation can build it.
func TestProtocolDocListsEveryMessage(t *testing.T) {
	md, err := os.ReadFile(docProtocolMD)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range chain.AllMsgs() {
		if !strings.Contains(string(md), "| `"+m.Type()+"` |") {
			t.Errorf("docs/PROTOCOL.md's table of message types has no row for %s", m.Type())
		}
	}
}
