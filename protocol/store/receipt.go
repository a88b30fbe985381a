package store

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/protocol/store/pb"
)

// receiptDomain starts every signed receipt (docs/PROTOCOL.md, "Receipts").
// v2 added the session and nonce: a v1 receipt's signature does not verify
// as v2, so a receipt signed before cannot pass for one bound to a push.
const receiptDomain = "satchel-receipt/v2\n"

// NonceLength is the length of a chunk request's nonce, which the receipt
// answering it echoes.
const NonceLength = 16

// ErrBadReceipt means a receipt is malformed, names another provider, its
// signature does not verify, or it does not answer the push it came back
// for (another chunk, object, bag, session or nonce).
var ErrBadReceipt = errors.New("store: invalid receipt")

// ReceiptBytes returns the exact bytes a receipt's signature covers:
//
//	"satchel-receipt/v2\n" || uvarint(len(cid)) || cid || u64(object_id)
//	  || uvarint(len(bag_id)) || bag_id || uvarint(len(provider)) || provider
//	  || u64(stored_at_unix) || u64(expiry_unix)
//	  || uvarint(len(session)) || session || uvarint(len(nonce)) || nonce
//
// with the integers big-endian.
func ReceiptBytes(r *pb.Receipt) []byte {
	b := make([]byte, 0, len(receiptDomain)+5*binary.MaxVarintLen64+len(r.GetCid())+len(r.GetBagId())+len(r.GetProvider())+
		len(r.GetSession())+len(r.GetNonce())+24)
	b = append(b, receiptDomain...)
	b = appendField(b, r.GetCid())
	b = binary.BigEndian.AppendUint64(b, r.GetObjectId())
	b = appendField(b, []byte(r.GetBagId()))
	b = appendField(b, r.GetProvider())
	b = binary.BigEndian.AppendUint64(b, uint64(r.GetStoredAtUnix()))
	b = binary.BigEndian.AppendUint64(b, uint64(r.GetExpiryUnix()))
	b = appendField(b, r.GetSession())
	return appendField(b, r.GetNonce())
}

// appendField appends p to b prefixed with its length as a uvarint: the
// fields of the bytes a receipt or a hop token signs can be told apart
// whatever they hold.
func appendField(b, p []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(p))), p...)
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

// checkReceiptFor checks that a receipt (its signature verified already)
// answers push c: this chunk, object and bag, session (the session its
// provider was pushed the chunk under: c.Session, or a forward hop's) for
// an unregistered object's chunk and none for a registered one's, and the
// push's nonce. who names the receipt in the error.
func checkReceiptFor(rc *pb.Receipt, c *ChunkPush, session []byte, who string) error {
	if !bytes.Equal(rc.GetCid(), c.CID.Bytes()) || rc.GetObjectId() != c.Object || rc.GetBagId() != c.Bag {
		return fmt.Errorf("%w: %s is for chunk %x of object %d in bag %q, not the chunk pushed",
			ErrBadReceipt, who, rc.GetCid(), rc.GetObjectId(), rc.GetBagId())
	}
	if want := receiptSession(c.Object, session); !bytes.Equal(rc.GetSession(), want) {
		return fmt.Errorf("%w: %s names upload session %s, not the push's session %s: it answers another upload (replayed?)",
			ErrBadReceipt, who, hexOrNone(rc.GetSession()), hexOrNone(want))
	}
	if !bytes.Equal(rc.GetNonce(), c.nonce) {
		return fmt.Errorf("%w: %s answers the chunk request with nonce %s, not this push's %s: it answers an earlier push (replayed?)",
			ErrBadReceipt, who, hexOrNone(rc.GetNonce()), hexOrNone(c.nonce))
	}
	return nil
}

// hexOrNone renders b in hex for an error message, "none" when empty.
func hexOrNone(b []byte) string {
	if len(b) == 0 {
		return "none"
	}
	return fmt.Sprintf("%x", b)
}

// receiptSession is the session a receipt for a chunk of object pushed
// under session names: the session for an unregistered object (object 0),
// none for a registered one.
func receiptSession(object uint64, session []byte) []byte {
	if object != 0 {
		return nil
	}
	return session
}

// receiptSession is the session the provider's receipt for ex names: the
// uploader's 16-byte session for a chunk of an unregistered object, none
// for a registered object's (its block store session is the object's).
func (ex *storeExchange) receiptSession() []byte {
	if ex.object != 0 || !IsClientSessionID(ex.session.ID) {
		return nil
	}
	return ex.session.ID[1:]
}

// checkNonce checks a chunk request's nonce; its error's text is the
// refusal reason.
func checkNonce(nonce []byte) error {
	if len(nonce) != 0 && len(nonce) != NonceLength {
		return fmt.Errorf("request nonce of %d bytes, not %d", len(nonce), NonceLength)
	}
	return nil
}

// newNonce returns a fresh random chunk request nonce.
func newNonce() ([]byte, error) {
	n := make([]byte, NonceLength)
	if _, err := rand.Read(n); err != nil {
		return nil, fmt.Errorf("store: push: draw a nonce: %w", err)
	}
	return n, nil
}

// peerString renders raw peer ID bytes for an error message.
func peerString(b []byte) string {
	id, err := peer.IDFromBytes(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return id.String()
}
