package chain

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"reflect"
)

// MaxTxBytes is the largest encoded transaction accepted.
const MaxTxBytes = 1 << 20

// Tx is a decoded, signature-verified transaction.
type Tx struct {
	ChainID string
	Signer  Account
	Nonce   uint64
	Msg     Msg
	// Hash is sha256 of the encoded transaction, as CometBFT hashes it.
	Hash []byte
}

// txEnvelope is the wire form of a transaction: JSON, with the message
// body kept as the exact bytes that were signed.
type txEnvelope struct {
	ChainID   string          `json:"chainId"`
	Signer    Account         `json:"signer"`
	Nonce     uint64          `json:"nonce"`
	Type      string          `json:"type"`
	Body      json.RawMessage `json:"body"`
	Signature []byte          `json:"signature"`
}

const signDomain = "satchel-tx/v1\n"

// signBytes is what the signer signs: a domain tag, then the chain ID, the
// signer's public key, the nonce, the type tag and the body, each
// length-prefixed (or fixed-size), so no two transactions share sign bytes.
func signBytes(chainID string, pub ed25519.PublicKey, nonce uint64, typ string, body []byte) []byte {
	var b bytes.Buffer
	b.WriteString(signDomain)
	writeBytes := func(p []byte) {
		b.Write(binary.AppendUvarint(nil, uint64(len(p))))
		b.Write(p)
	}
	writeBytes([]byte(chainID))
	b.Write(pub)
	b.Write(binary.BigEndian.AppendUint64(nil, nonce))
	writeBytes([]byte(typ))
	writeBytes(body)
	return b.Bytes()
}

// SignTx signs msg for DefaultChainID with the given nonce and returns the
// encoded transaction. Use SignTxForChain on a network with another chain
// ID (Client does so on its own).
func SignTx(key Key, nonce uint64, msg Msg) ([]byte, error) {
	return SignTxForChain(DefaultChainID, key, nonce, msg)
}

// SignTxForChain signs msg for chainID. The signature covers the chain ID,
// the signer, the nonce, the message type and the message body.
func SignTxForChain(chainID string, key Key, nonce uint64, msg Msg) ([]byte, error) {
	if key.IsZero() {
		return nil, fmt.Errorf("sign transaction: no key")
	}
	if msg == nil {
		return nil, fmt.Errorf("sign transaction: no message")
	}
	if _, ok := msgRegistry[msg.Type()]; !ok || reflect.TypeOf(msg) != msgRegistry[msg.Type()] {
		return nil, fmt.Errorf("sign transaction: unknown message %T; pass a chain.Msg value, not a pointer", msg)
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("sign transaction: encode %s: %w", msg.Type(), err)
	}
	pub := key.Public()
	env := txEnvelope{
		ChainID:   chainID,
		Signer:    AccountFromPublicKey(pub),
		Nonce:     nonce,
		Type:      msg.Type(),
		Body:      body,
		Signature: key.Sign(signBytes(chainID, pub, nonce, msg.Type(), body)),
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("sign transaction: %w", err)
	}
	if len(b) > MaxTxBytes {
		return nil, Errorf(ErrInvalid, "transaction is %d bytes, above the %d-byte limit; split the batch", len(b), MaxTxBytes)
	}
	return b, nil
}

// DecodeTx decodes a transaction and verifies its signature. It does not
// check the chain ID against a network, the nonce or the message's
// ValidateBasic: the Machine does. Errors match ErrBadTx, ErrBadSignature
// or ErrUnknownMsg.
func DecodeTx(b []byte) (Tx, error) {
	if len(b) > MaxTxBytes {
		return Tx{}, Errorf(ErrBadTx, "transaction is %d bytes, above the %d-byte limit", len(b), MaxTxBytes)
	}
	var env txEnvelope
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return Tx{}, Errorf(ErrBadTx, "transaction could not be decoded: %v", err)
	}
	if dec.More() {
		return Tx{}, Errorf(ErrBadTx, "transaction has trailing data")
	}
	pub, err := env.Signer.PublicKey()
	if err != nil {
		return Tx{}, Errorf(ErrBadTx, "transaction signer: %v", err)
	}
	if len(env.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(pub, signBytes(env.ChainID, pub, env.Nonce, env.Type, env.Body), env.Signature) {
		return Tx{}, Errorf(ErrBadSignature, "transaction signature does not verify for account %s; sign with that account's key", env.Signer)
	}
	// Only the canonical spelling is accepted: otherwise a relayer could
	// re-space a signed transaction into new bytes with a new hash that
	// passes the mempool's duplicate check and races the original.
	if canon, err := json.Marshal(env); err != nil || !bytes.Equal(canon, b) {
		return Tx{}, Errorf(ErrBadTx, "transaction is not in canonical form (compact JSON, fields in order); encode it with SignTx")
	}
	t, ok := msgRegistry[env.Type]
	if !ok {
		return Tx{}, Errorf(ErrUnknownMsg, "unknown transaction type %q; the node may be older than the client", env.Type)
	}
	ptr := reflect.New(t)
	bd := json.NewDecoder(bytes.NewReader(env.Body))
	bd.DisallowUnknownFields()
	if err := bd.Decode(ptr.Interface()); err != nil {
		return Tx{}, Errorf(ErrBadTx, "transaction %s body could not be decoded: %v", env.Type, err)
	}
	h := sha256.Sum256(b)
	return Tx{
		ChainID: env.ChainID,
		Signer:  env.Signer,
		Nonce:   env.Nonce,
		Msg:     ptr.Elem().Interface().(Msg),
		Hash:    h[:],
	}, nil
}

// TxHash returns the hash of encoded transaction bytes (sha256, as
// CometBFT computes it).
func TxHash(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}
