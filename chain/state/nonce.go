package state

import (
	"encoding/binary"
	"fmt"

	"github.com/satchel-net/satchel/chain"
)

// NonceWindow is how far below an account's highest nonce a not yet used
// nonce is still accepted.
const NonceWindow = 64

// nonces is an account's replay state: the highest nonce used and a bitmap
// of the NonceWindow nonces below it (bit i set: nonce max-1-i was used),
// the anti-replay window of IPsec. Stored as 16 bytes: max, bits (both
// big-endian).
type nonces struct {
	max  uint64
	bits uint64
}

func loadNonces(s store, a chain.Account) (nonces, error) {
	b, ok, err := s.c.get(accountKey(a))
	if err != nil || !ok {
		return nonces{}, err
	}
	if len(b) != 16 {
		return nonces{}, fmt.Errorf("account %s nonce record: want 16 bytes, have %d", a, len(b))
	}
	return nonces{max: binary.BigEndian.Uint64(b), bits: binary.BigEndian.Uint64(b[8:])}, nil
}

func (n nonces) save(s store, a chain.Account) {
	b := binary.BigEndian.AppendUint64(nil, n.max)
	s.c.set(accountKey(a), binary.BigEndian.AppendUint64(b, n.bits))
}

// check reports why nonce v cannot be used, or nil.
func (n nonces) check(a chain.Account, v uint64) error {
	switch {
	case v > n.max:
		return nil
	case v == n.max:
		return chain.Errorf(chain.ErrBadNonce, "nonce %d of account %s was already used; resubmit with nonce %d or higher", v, a, n.max+1)
	case n.max-v > NonceWindow:
		return chain.Errorf(chain.ErrBadNonce, "nonce %d of account %s is more than %d below its highest nonce %d; resubmit with nonce %d or higher", v, a, NonceWindow, n.max, n.max+1)
	case n.bits&(1<<(n.max-v-1)) != 0:
		return chain.Errorf(chain.ErrBadNonce, "nonce %d of account %s was already used; resubmit with nonce %d or higher", v, a, n.max+1)
	}
	return nil
}

// use marks nonce v used; check(v) must have passed.
func (n nonces) use(v uint64) nonces {
	if v > n.max {
		shift := v - n.max
		// The old max becomes bit shift-1; shifts of 64 or more clear all.
		n.bits = n.bits<<shift | 1<<(shift-1)
		n.max = v
		return n
	}
	n.bits |= 1 << (n.max - v - 1)
	return n
}
