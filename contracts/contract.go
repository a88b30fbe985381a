package contracts

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/topics"
)

// ID names a proposal and the contracts that come from it: 16 random bytes
// chosen by the renter. A provider holds at most one contract per ID.
type ID [16]byte

// NewID returns a random ID.
func NewID() ID {
	var id ID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never fails
	return id
}

// String returns the ID in lower-case hex.
func (id ID) String() string { return hex.EncodeToString(id[:]) }

// ParseID reads an ID written by String.
func ParseID(s string) (ID, error) {
	var id ID
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(id) {
		return id, fmt.Errorf("contract id %q: want %d hex digits: %w", truncate(s), 2*len(id), ErrMalformed)
	}
	copy(id[:], b)
	return id, nil
}

func idFrom(b []byte, what string) (ID, error) {
	var id ID
	if len(b) != len(id) {
		return id, malformed("%s: %d bytes, want %d", what, len(b), len(id))
	}
	copy(id[:], b)
	return id, nil
}

// Terms are what a contract stores and how: the fields a proposal and the
// contracts made from it share.
type Terms struct {
	// Bag is the bag the object belongs to; only operators of buckets the
	// chain assigned to the bag may take the contract.
	Bag chain.BagID
	// Object is the registered data object, or 0 when the upload is not
	// registered yet.
	Object chain.ObjectID
	// ContentID is the object's CID (text form), or "" when not known yet.
	ContentID string
	// Size is the number of bytes to store.
	Size uint64
	// Chunks is the number of chunks the object has.
	Chunks uint64
	// Availability and Speed are the classes the renter asks for.
	Availability topics.Descriptor
	Speed        topics.Descriptor
	// Redundancy is how many providers the renter wants to hold the object.
	Redundancy uint32
}

func (t Terms) validate() error {
	if err := t.Bag.Validate(); err != nil {
		return malformed("bag: %v", err)
	}
	if len(t.Bag) > MaxBagIDLen {
		return malformed("bag id is %d bytes, limit %d", len(t.Bag), MaxBagIDLen)
	}
	if len(t.ContentID) > chain.MaxContentIDLen {
		return malformed("content id is %d bytes, limit %d", len(t.ContentID), chain.MaxContentIDLen)
	}
	if t.Size == 0 {
		return malformed("size 0: a contract stores at least one byte")
	}
	if t.Chunks == 0 || t.Chunks > t.Size {
		return malformed("chunk count %d for %d bytes: want 1 to the size", t.Chunks, t.Size)
	}
	if !t.Availability.Valid() || !t.Speed.Valid() {
		return malformed("availability %v, speed %v: want low, medium or high", t.Availability, t.Speed)
	}
	if t.Redundancy == 0 || t.Redundancy > MaxRedundancy {
		return malformed("redundancy %d: want 1 to %d", t.Redundancy, MaxRedundancy)
	}
	return nil
}

// topicFor returns the contract topic terms of size and duration d belong on.
func (t Terms) topicFor(d time.Duration) (topics.Topic, error) {
	dd, err := topics.ClassifyDuration(d)
	if err != nil {
		return topics.Topic{}, malformed("duration: %v", err)
	}
	return topics.New(topics.ClassifySize(t.Size), dd, t.Availability, t.Speed), nil
}

// Proposal is what a renter publishes on the contract topic of its
// requirements, signed with its member account key.
type Proposal struct {
	ID    ID
	Topic topics.Topic
	Terms
	// Duration is how long the object is to be stored, in whole seconds.
	Duration time.Duration
	// Renter is the controller account of member Member; it signs.
	Renter chain.Account
	Member chain.MemberID
	// RenterPeer is the libp2p peer providers open OFFER streams to; it is
	// the gossipsub author of the published message.
	RenterPeer peer.ID
	// RenterAddrs are where RenterPeer listens (binary multiaddrs), so a
	// provider that is not connected to it can open the OFFER stream.
	RenterAddrs [][]byte
	// Created and TTL bound when offers are taken: until Created+TTL.
	Created time.Time
	TTL     time.Duration
	// Signature is the renter's ed25519 signature of SigningBytes.
	Signature []byte
}

// Expires returns when the proposal stops taking offers.
func (p *Proposal) Expires() time.Time { return p.Created.Add(p.TTL) }

// SigningBytes returns the canonical form the renter signs: the domain
// "satchel/proposal/v1\x00", then fields 1 to 17 of the Proposal message in
// field order (see docs/PROTOCOL.md).
func (p *Proposal) SigningBytes() []byte {
	pub, _ := p.Renter.PublicKey()
	c := newCanon(proposalDomain, 256)
	c.bytes(p.ID[:])
	c.bytes(p.Topic.Bytes())
	c.str(string(p.Bag))
	c.u64(uint64(p.Object))
	c.str(p.ContentID)
	c.u64(p.Size)
	c.u64(p.Chunks)
	c.u64(uint64(p.Duration / time.Second))
	c.u64(uint64(p.Availability))
	c.u64(uint64(p.Speed))
	c.u64(uint64(p.Redundancy))
	c.bytes(pub)
	c.u64(uint64(p.Member))
	c.bytes([]byte(p.RenterPeer))
	c.i64(p.Created.Unix())
	c.u64(uint64(p.TTL / time.Second))
	c.u64(uint64(len(p.RenterAddrs)))
	for _, a := range p.RenterAddrs {
		c.bytes(a)
	}
	return c.b
}

// Sign sets the proposal's renter to key's account and signs it.
func (p *Proposal) Sign(key chain.Key) {
	p.Renter = key.Account()
	p.Signature = key.Sign(p.SigningBytes())
}

// Validate checks every field's form and range, that Topic is the topic the
// proposal's own requirements classify as, and the renter's signature. It
// does not look at the chain or the clock; see Check for those.
func (p *Proposal) Validate() error {
	if err := p.Terms.validate(); err != nil {
		return err
	}
	if p.Duration < time.Second || p.Duration > MaxDuration || p.Duration%time.Second != 0 {
		return malformed("duration %v: want whole seconds from 1s to %v", p.Duration, MaxDuration)
	}
	if p.TTL < time.Second || p.TTL > MaxTTL || p.TTL%time.Second != 0 {
		return malformed("ttl %v: want whole seconds from 1s to %v", p.TTL, MaxTTL)
	}
	if err := p.Topic.Validate(); err != nil || p.Topic.Prefix != topics.PrefixContract {
		return malformed("topic %s: not a contract topic", p.Topic)
	}
	want, err := p.topicFor(p.Duration)
	if err != nil {
		return err
	}
	if want != p.Topic {
		return fmt.Errorf("%w: proposal on topic %s, but its size %d bytes, duration %v, availability %v and speed %v classify as %s",
			ErrTopicMismatch, p.Topic, p.Size, p.Duration, p.Availability, p.Speed, want)
	}
	if err := p.RenterPeer.Validate(); err != nil {
		return malformed("renter peer: %v", err)
	}
	if len(p.RenterAddrs) > MaxRenterAddrs {
		return malformed("%d renter addresses, limit %d", len(p.RenterAddrs), MaxRenterAddrs)
	}
	for _, a := range p.RenterAddrs {
		if _, err := ma.NewMultiaddrBytes(a); err != nil {
			return malformed("renter address: %v", err)
		}
	}
	return verify(p.Renter, p.SigningBytes(), p.Signature, "renter")
}

// Check validates p (see Validate) and then checks it against the clock: it
// must not have expired at now, nor be created more than MaxClockSkew ahead.
func (p *Proposal) Check(now time.Time) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Created.After(now.Add(MaxClockSkew)) {
		// Not the sender's fault for sure (a relay's clock may differ from
		// this node's), so the validator ignores rather than rejects it.
		return fmt.Errorf("%w: proposal %s created %v, more than %v ahead of this node's clock",
			ErrClockSkew, p.ID, p.Created.UTC(), MaxClockSkew)
	}
	if now.After(p.Expires()) {
		return fmt.Errorf("%w: proposal %s took offers until %v", ErrExpired, p.ID, p.Expires().UTC())
	}
	return nil
}

// verify checks an ed25519 signature by acct over msg; who names the signer
// in the error.
func verify(acct chain.Account, msg, sig []byte, who string) error {
	pub, err := acct.PublicKey()
	if err != nil {
		return malformed("%s: %v", who, err)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sig) {
		return fmt.Errorf("%w: %s signature of account %s does not verify", ErrSignature, who, acct)
	}
	return nil
}

// Contract is a storage contract between a renter (a member account) and a
// provider (the operator of a storage bucket: a worker's role account and
// the node's peer ID). It is complete when both have signed the same
// canonical form, SigningBytes.
type Contract struct {
	ID    ID
	Topic topics.Topic
	Terms
	// Start and End bound the storage, in whole seconds.
	Start, End time.Time
	Renter     chain.Account
	Member     chain.MemberID
	// Provider is the storage worker's role account; Worker operates Bucket,
	// and ProviderPeer is its node.
	Provider     chain.Account
	Worker       chain.WorkerID
	Bucket       chain.StorageBucketID
	ProviderPeer peer.ID

	RenterSignature   []byte
	ProviderSignature []byte
}

// SigningBytes returns the canonical form both sides sign: the domain
// "satchel/contract/v1\x00", then fields 1 to 18 of the Contract message in
// field order, the signatures left out (see docs/PROTOCOL.md).
func (c *Contract) SigningBytes() []byte {
	renter, _ := c.Renter.PublicKey()
	prov, _ := c.Provider.PublicKey()
	w := newCanon(contractDomain, 320)
	w.bytes(c.ID[:])
	w.bytes(c.Topic.Bytes())
	w.str(string(c.Bag))
	w.u64(uint64(c.Object))
	w.str(c.ContentID)
	w.u64(c.Size)
	w.u64(c.Chunks)
	w.i64(c.Start.Unix())
	w.i64(c.End.Unix())
	w.u64(uint64(c.Availability))
	w.u64(uint64(c.Speed))
	w.u64(uint64(c.Redundancy))
	w.bytes(renter)
	w.u64(uint64(c.Member))
	w.bytes(prov)
	w.u64(uint64(c.Worker))
	w.u64(uint64(c.Bucket))
	w.bytes([]byte(c.ProviderPeer))
	return w.b
}

// SignAsRenter sets the renter to key's account and signs.
func (c *Contract) SignAsRenter(key chain.Key) {
	c.Renter = key.Account()
	c.RenterSignature = key.Sign(c.SigningBytes())
}

// SignAsProvider sets the provider to key's account and signs.
func (c *Contract) SignAsProvider(key chain.Key) {
	c.Provider = key.Account()
	c.ProviderSignature = key.Sign(c.SigningBytes())
}

// Validate checks every field's form and range and that Topic matches the
// terms. It checks no signature.
func (c *Contract) Validate() error {
	if err := c.Terms.validate(); err != nil {
		return err
	}
	d := c.End.Sub(c.Start)
	if d < time.Second || d > MaxDuration {
		return malformed("start %v to end %v: want an end 1s to %v after the start", c.Start.UTC(), c.End.UTC(), MaxDuration)
	}
	if err := c.Topic.Validate(); err != nil || c.Topic.Prefix != topics.PrefixContract {
		return malformed("topic %s: not a contract topic", c.Topic)
	}
	// A renewed contract runs longer than it was proposed for, so only the
	// classes fixed by the object are bound to the topic.
	if c.Topic.Size != topics.ClassifySize(c.Size) || c.Topic.Availability != c.Availability || c.Topic.Speed != c.Speed {
		return fmt.Errorf("%w: contract on topic %s does not match its size %d, availability %v and speed %v",
			ErrTopicMismatch, c.Topic, c.Size, c.Availability, c.Speed)
	}
	if err := c.Renter.Validate(); err != nil {
		return malformed("renter: %v", err)
	}
	if err := c.Provider.Validate(); err != nil {
		return malformed("provider: %v", err)
	}
	if err := c.ProviderPeer.Validate(); err != nil {
		return malformed("provider peer: %v", err)
	}
	return nil
}

// VerifyProvider validates c and checks the provider's signature.
func (c *Contract) VerifyProvider() error {
	if err := c.Validate(); err != nil {
		return err
	}
	return verify(c.Provider, c.SigningBytes(), c.ProviderSignature, "provider")
}

// Verify validates c and checks both signatures: a contract that passes is
// complete and binds both sides.
func (c *Contract) Verify() error {
	if err := c.VerifyProvider(); err != nil {
		return err
	}
	return verify(c.Renter, c.SigningBytes(), c.RenterSignature, "renter")
}

// Live reports whether the contract runs at t.
func (c *Contract) Live(t time.Time) bool { return !t.Before(c.Start) && t.Before(c.End) }

// sameTerms reports the first field, other than the signatures, in which a
// and b differ, or "" when they agree.
func sameTerms(a, b *Contract) string {
	if !bytes.Equal(a.SigningBytes(), b.SigningBytes()) {
		return firstDiff(a, b, true)
	}
	return ""
}

// firstDiff names the first field in which a and b differ. With renewable
// set, the fields RENEW may change are compared too.
func firstDiff(a, b *Contract, renewable bool) string {
	fixed := []struct {
		name string
		same bool
	}{
		{"id", a.ID == b.ID},
		{"topic", a.Topic == b.Topic},
		{"bag_id", a.Bag == b.Bag},
		{"object_id", a.Object == b.Object},
		{"content_id", a.ContentID == b.ContentID},
		{"size", a.Size == b.Size},
		{"chunk_count", a.Chunks == b.Chunks},
		{"availability", a.Availability == b.Availability},
		{"speed", a.Speed == b.Speed},
		{"redundancy", a.Redundancy == b.Redundancy},
		{"provider", a.Provider == b.Provider},
		{"provider_worker", a.Worker == b.Worker},
		{"provider_bucket", a.Bucket == b.Bucket},
		{"provider_peer", a.ProviderPeer == b.ProviderPeer},
	}
	for _, f := range fixed {
		if !f.same {
			return f.name
		}
	}
	if !renewable {
		return ""
	}
	switch {
	case a.Start.Unix() != b.Start.Unix():
		return "start_unix"
	case a.End.Unix() != b.End.Unix():
		return "end_unix"
	case a.Renter != b.Renter:
		return "renter"
	case a.Member != b.Member:
		return "renter_member"
	}
	return ""
}
