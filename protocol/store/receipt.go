package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store/pb"
)

// receiptDomain starts every signed receipt (docs/PROTOCOL.md, "Receipts").
const receiptDomain = "satchel-receipt/v1\n"

// ErrBadReceipt means a receipt is malformed, names another provider, or its
// signature does not verify.
var ErrBadReceipt = errors.New("store: invalid receipt")

// ReceiptBytes returns the exact bytes a receipt's signature covers:
//
//	"satchel-receipt/v1\n" || uvarint(len(cid)) || cid || u64(object_id)
//	  || uvarint(len(bag_id)) || bag_id || uvarint(len(provider)) || provider
//	  || u64(stored_at_unix) || u64(expiry_unix)
//
// with the integers big-endian.
func ReceiptBytes(r *pb.Receipt) []byte {
	var b bytes.Buffer
	b.Grow(len(receiptDomain) + 3*binary.MaxVarintLen64 + len(r.GetCid()) + len(r.GetBagId()) + len(r.GetProvider()) + 24)
	b.WriteString(receiptDomain)
	appendBytes := func(p []byte) {
		b.Write(binary.AppendUvarint(nil, uint64(len(p))))
		b.Write(p)
	}
	appendU64 := func(v uint64) { b.Write(binary.BigEndian.AppendUint64(nil, v)) }
	appendBytes(r.GetCid())
	appendU64(r.GetObjectId())
	appendBytes([]byte(r.GetBagId()))
	appendBytes(r.GetProvider())
	appendU64(uint64(r.GetStoredAtUnix()))
	appendU64(uint64(r.GetExpiryUnix()))
	return b.Bytes()
}

// SignReceipt fills r.Provider with the peer ID of key and r.Signature with
// key's signature over ReceiptBytes(r).
func SignReceipt(key crypto.PrivKey, r *pb.Receipt) error {
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return fmt.Errorf("store: sign receipt: %w", err)
	}
	r.Provider = []byte(id)
	sig, err := key.Sign(ReceiptBytes(r))
	if err != nil {
		return fmt.Errorf("store: sign receipt: %w", err)
	}
	r.Signature = sig
	return nil
}

// VerifyReceipt checks that r names provider p and carries p's valid
// signature over ReceiptBytes(r). The public key comes from the peer ID
// (ed25519 keys are inlined in it). It returns an error wrapping
// ErrBadReceipt if not.
func VerifyReceipt(r *pb.Receipt, p peer.ID) error {
	if r == nil {
		return fmt.Errorf("%w: no receipt", ErrBadReceipt)
	}
	if !bytes.Equal(r.GetProvider(), []byte(p)) {
		return fmt.Errorf("%w: receipt names provider %s, expected %s", ErrBadReceipt, peerString(r.GetProvider()), p)
	}
	pub, err := p.ExtractPublicKey()
	if err != nil {
		return fmt.Errorf("%w: no public key in peer ID %s: %v", ErrBadReceipt, p, err)
	}
	ok, err := pub.Verify(ReceiptBytes(r), r.GetSignature())
	if err != nil || !ok {
		return fmt.Errorf("%w: signature of %s does not verify", ErrBadReceipt, p)
	}
	return nil
}

// peerString renders raw peer ID bytes for an error message.
func peerString(b []byte) string {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return id.String()
}
