package store_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chunker"
	"github.com/satchel-net/satchel/protocol/store"
)

// TestVerifyHopTokenKey: the token of a renter whose peer ID is a hash of
// its key (RSA, ECDSA) verifies against the key given for it, not from the
// ID alone; a key that is not the renter's is refused even with a token it
// signed.
func TestVerifyHopTokenKey(t *testing.T) {
	keyPeer := func() (crypto.PrivKey, peer.ID) {
		k, _, err := crypto.GenerateKeyPair(crypto.ECDSA, 0)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		return k, id
	}
	renterKey, renter := keyPeer()
	otherKey, _ := keyPeer()
	_, hop := keyPeer()
	session := bytes.Repeat([]byte{3}, store.SessionIDLength)
	c := chunker.ChunkCID([]byte("chunk"))
	tok, err := store.SignHopToken(renterKey, spBag, session, c, hop)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyHopToken(renter, tok, spBag, session, c, hop); !errors.Is(err, store.ErrBadHopToken) {
		t.Fatalf("from the ECDSA renter's ID alone: %v; want ErrBadHopToken (no key in the ID)", err)
	}
	if err := store.VerifyHopTokenKey(renter, renterKey.GetPublic(), tok, spBag, session, c, hop); err != nil {
		t.Fatalf("with the renter's key: %v", err)
	}
	other, err := store.SignHopToken(otherKey, spBag, session, c, hop)
	if err != nil {
		t.Fatal(err)
	}
	if err := store.VerifyHopTokenKey(renter, otherKey.GetPublic(), other, spBag, session, c, hop); !errors.Is(err, store.ErrBadHopToken) {
		t.Fatalf("another key given as the renter's, with its own token: %v; want ErrBadHopToken", err)
	}
	if err := store.VerifyHopTokenKey(renter, renterKey.GetPublic(), other, spBag, session, c, hop); !errors.Is(err, store.ErrBadHopToken) {
		t.Fatalf("another key's token: %v; want ErrBadHopToken", err)
	}
}
