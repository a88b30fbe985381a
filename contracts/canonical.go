package contracts

import (
	"encoding/binary"
	"time"

	"github.com/satchel-net/satchel/chain"
)

// Domain separators: the first bytes of every canonical form, so a signature
// over one kind of message can never be replayed as another.
const (
	proposalDomain = "satchel/proposal/v1\x00"
	contractDomain = "satchel/contract/v1\x00"
	retrieveDomain = "satchel/retrieve/v1\x00"
)

// canon builds a canonical form: a domain, then fields in a fixed order, each
// an integer as 8 bytes big-endian (signed integers two's complement, 32-bit
// fields widened) or a byte string as a 4-byte big-endian length followed by
// its bytes. docs/PROTOCOL.md gives the same layout in words.
type canon struct{ b []byte }

func newCanon(domain string, size int) *canon {
	c := &canon{b: make([]byte, 0, len(domain)+size)}
	c.b = append(c.b, domain...)
	return c
}

func (c *canon) u64(v uint64) { c.b = binary.BigEndian.AppendUint64(c.b, v) }
func (c *canon) i64(v int64)  { c.u64(uint64(v)) }
func (c *canon) bytes(v []byte) {
	c.b = binary.BigEndian.AppendUint32(c.b, uint32(len(v)))
	c.b = append(c.b, v...)
}
func (c *canon) str(v string) { c.bytes([]byte(v)) }

// RetrieveSigningBytes is the canonical form a renter signs to RETRIEVE: the
// domain "satchel/retrieve/v1\x00", the contract ID and the provider's
// public key as byte strings, and the time as a signed 64-bit integer.
func RetrieveSigningBytes(id ID, provider chain.Account, at time.Time) []byte {
	pub, _ := provider.PublicKey()
	c := newCanon(retrieveDomain, 80)
	c.bytes(id[:])
	c.bytes(pub)
	c.i64(at.Unix())
	return c.b
}
