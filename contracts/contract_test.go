package contracts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/contracts/pb"
	"github.com/satchel-net/satchel/topics"
)

func seedKey(t testing.TB, b byte) chain.Key {
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = b
	}
	k, err := chain.KeyFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixedPeer is the identity peer ID of the bytes 0x00 0x24 ... used by the
// golden vectors: an identity multihash of a 32-byte ed25519 public key.
func fixedPeer(t testing.TB, b byte) peer.ID {
	raw := append([]byte{0x00, 0x24, 0x08, 0x01, 0x12, 0x20}, make([]byte, 32)...)
	for i := 6; i < len(raw); i++ {
		raw[i] = b
	}
	id, err := peer.IDFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func fixedContract(t testing.TB) (*Contract, chain.Key, chain.Key) {
	renter, prov := seedKey(t, 1), seedKey(t, 2)
	c := &Contract{
		ID: ID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}, Topic: topicA,
		Terms: Terms{Bag: "dynamic:channel:7", Object: 3, ContentID: "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
			Size: 5 << 20, Chunks: 5, Availability: topics.High, Speed: topics.High, Redundancy: 3},
		Start: time.Unix(1_800_000_000, 0), End: time.Unix(1_800_000_000+60*86400, 0),
		Renter: renter.Account(), Member: 1, Provider: prov.Account(), Worker: 4, Bucket: 5,
		ProviderPeer: fixedPeer(t, 3),
	}
	return c, renter, prov
}

// TestContractGolden pins the canonical form and signatures: another
// implementation following docs/PROTOCOL.md must produce these bytes.
func TestContractGolden(t *testing.T) {
	c, renter, prov := fixedContract(t)
	c.SignAsProvider(prov)
	c.SignAsRenter(renter)
	form := c.SigningBytes()
	if got := string(form[:len(contractDomain)]); got != contractDomain {
		t.Fatalf("form starts %q", got)
	}
	sum := sha256.Sum256(form)
	const wantLen, wantSum = 335, "52c0030e1d276b145444ae097d38b961f045b7986564e0b4dae779b5b141206a"
	if len(form) != wantLen || hex.EncodeToString(sum[:]) != wantSum {
		t.Errorf("canonical form: %d bytes, sha256 %x; want %d, %s\n%x", len(form), sum, wantLen, wantSum, form)
	}
	// ed25519 signatures are deterministic, so they are pinned too.
	const wantProvSig = "29303a6b7193774562861021d3be24601a583a95411efcd66fbacb97d4f8b5658edd82b1758cc5563b01431e2c6f6ebaca72d3df0970fbec1b4af1196d330105"
	if got := hex.EncodeToString(c.ProviderSignature); got != wantProvSig {
		t.Errorf("provider signature %s, want %s", got, wantProvSig)
	}
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	back, err := ContractFromPB(c.ToPB())
	if err != nil || string(back.SigningBytes()) != string(form) || back.Verify() != nil {
		t.Fatalf("protobuf round trip: %v", err)
	}
}

func TestContractVerify(t *testing.T) {
	c, renter, prov := fixedContract(t)
	c.SignAsProvider(prov)
	if err := c.VerifyProvider(); err != nil {
		t.Fatalf("provider-signed: %v", err)
	}
	if err := c.Verify(); !errors.Is(err, ErrSignature) {
		t.Fatalf("Verify without the renter's signature: %v, want ErrSignature", err)
	}
	c.SignAsRenter(renter)
	if err := c.Verify(); err != nil {
		t.Fatal(err)
	}
	for name, change := range map[string]func(*Contract){
		"size":      func(c *Contract) { c.Size++ },
		"end":       func(c *Contract) { c.End = c.End.Add(time.Second) },
		"bucket":    func(c *Contract) { c.Bucket++ },
		"peer":      func(c *Contract) { c.ProviderPeer = fixedPeer(t, 9) },
		"object":    func(c *Contract) { c.Object++ },
		"signature": func(c *Contract) { c.RenterSignature[3] ^= 1 },
	} {
		d := *c
		d.RenterSignature = append([]byte(nil), c.RenterSignature...)
		change(&d)
		if err := d.Verify(); !errors.Is(err, ErrSignature) {
			t.Errorf("changed %s: Verify = %v, want ErrSignature", name, err)
		}
	}
	bad := *c
	bad.Size = 30_000_000 // topic says small
	if err := bad.Validate(); !errors.Is(err, ErrTopicMismatch) {
		t.Errorf("size not matching topic: %v, want ErrTopicMismatch", err)
	}
}

func TestProposalValidate(t *testing.T) {
	key := seedKey(t, 1)
	mk := func(change func(*Proposal)) *Proposal {
		p := &Proposal{ID: NewID(), Topic: topicA,
			Terms:    Terms{Bag: "dynamic:channel:7", Size: 5 << 20, Chunks: 5, Availability: topics.High, Speed: topics.High, Redundancy: 3},
			Duration: 60 * day, Member: 1, RenterPeer: fixedPeer(t, 3), Created: time.Unix(1_800_000_000, 0), TTL: 30 * time.Second}
		if change != nil {
			change(p)
		}
		p.Sign(key)
		return p
	}
	if err := mk(nil).Validate(); err != nil {
		t.Fatalf("good proposal: %v", err)
	}
	tests := []struct {
		name   string
		change func(*Proposal)
		want   error
	}{
		{"size of another topic", func(p *Proposal) { p.Size = 30_000_000 }, ErrTopicMismatch},
		{"duration of another topic", func(p *Proposal) { p.Duration = 300 * day }, ErrTopicMismatch},
		{"speed of another topic", func(p *Proposal) { p.Speed = topics.Low }, ErrTopicMismatch},
		{"zero size", func(p *Proposal) { p.Size = 0 }, ErrMalformed},
		{"more chunks than bytes", func(p *Proposal) { p.Size, p.Chunks = 3, 4; p.Topic = topicA }, ErrMalformed},
		{"no redundancy", func(p *Proposal) { p.Redundancy = 0 }, ErrMalformed},
		{"too much redundancy", func(p *Proposal) { p.Redundancy = MaxRedundancy + 1 }, ErrMalformed},
		{"bad bag", func(p *Proposal) { p.Bag = "dynamic:nope" }, ErrMalformed},
		{"ttl too long", func(p *Proposal) { p.TTL = MaxTTL + time.Second }, ErrMalformed},
		{"fractional duration", func(p *Proposal) { p.Duration += time.Millisecond }, ErrMalformed},
		{"audit topic", func(p *Proposal) { p.Topic.Prefix = topics.PrefixAudit }, ErrMalformed},
		{"too many addrs", func(p *Proposal) { p.RenterAddrs = make([][]byte, MaxRenterAddrs+1) }, ErrMalformed},
	}
	for _, tt := range tests {
		if err := mk(tt.change).Validate(); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
	p := mk(nil)
	p.Signature[0] ^= 1
	if err := p.Validate(); !errors.Is(err, ErrSignature) {
		t.Errorf("bad signature: %v", err)
	}
	p = mk(nil)
	if err := p.Check(p.Expires().Add(time.Second)); !errors.Is(err, ErrExpired) {
		t.Errorf("Check after expiry: %v, want ErrExpired", err)
	}
	if err := p.Check(p.Created.Add(-time.Hour)); !errors.Is(err, ErrClockSkew) || isSenderFault(err) {
		t.Errorf("Check of a proposal from the future: %v, want ErrClockSkew, not the sender's fault", err)
	}
	// Decoding refuses wrong lengths before anything else looks at them.
	w := p.ToPB()
	w.Renter = w.Renter[:31]
	if _, err := ProposalFromPB(w); !errors.Is(err, ErrMalformed) {
		t.Errorf("31-byte renter key: %v", err)
	}
	w = p.ToPB()
	w.Topic = []byte{0x0f, 1, 2, 3}
	if _, err := ProposalFromPB(w); !errors.Is(err, ErrMalformed) {
		t.Errorf("4-byte topic: %v", err)
	}
	if _, err := ProposalFromPB(&pb.Proposal{}); !errors.Is(err, ErrMalformed) {
		t.Errorf("empty proposal: %v", err)
	}
}

func TestStore(t *testing.T) {
	dir := t.TempDir()
	st, err := OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, renter, prov := fixedContract(t)
	c.SignAsProvider(prov)
	if err := st.Put(c); !errors.Is(err, ErrSignature) {
		t.Fatalf("Put of a contract the renter did not sign: %v, want ErrSignature", err)
	}
	if all, _ := st.List(); len(all) != 0 {
		t.Fatalf("a refused Put stored %d contracts", len(all))
	}
	c.SignAsRenter(renter)
	if err := st.Put(c); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(NewID(), c.Provider); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get of a missing contract: %v", err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st, err = OpenStore(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	got, err := st.Get(c.ID, c.Provider)
	if err != nil || string(got.SigningBytes()) != string(c.SigningBytes()) {
		t.Fatalf("after reopening: %v", err)
	}

	// The object an upload became is kept beside its contract, and goes
	// with it; none is recorded for a contract not stored.
	if _, ok, err := st.Bound(c.ID, c.Provider); ok || err != nil {
		t.Fatalf("a contract never bound: bound %v (%v)", ok, err)
	}
	if err := st.SetBound(NewID(), c.Provider, 9); !errors.Is(err, ErrNotFound) {
		t.Fatalf("binding a contract not stored: %v, want ErrNotFound", err)
	}
	if err := st.SetBound(c.ID, c.Provider, 42); err != nil {
		t.Fatal(err)
	}
	if obj, ok, err := st.Bound(c.ID, c.Provider); !ok || err != nil || obj != 42 {
		t.Fatalf("bound to %d (%v, %v), want 42", obj, ok, err)
	}
	if all, _ := st.List(); len(all) != 1 {
		t.Fatalf("List after a binding: %d contracts, want 1", len(all))
	}
	if err := st.Delete(c.ID, c.Provider); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := st.Bound(c.ID, c.Provider); ok {
		t.Fatal("the object of a deleted contract is still recorded")
	}
}

// TestLedger checks that room is counted across open contracts against the
// voucher and the free disk.
func TestLedger(t *testing.T) {
	dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 12 << 20}}}
	free := uint64(100 << 20)
	l := NewLedger(dir, 1, func() (uint64, error) { return free, nil })
	ctx := context.Background()
	c, _, _ := fixedContract(t)
	c.Object = 0
	if _, err := l.Reserve(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, c); err != nil || l.Reserved() != 5<<20 {
		t.Fatalf("reserving the same contract again: %v, reserved %d", err, l.Reserved())
	}
	c2 := *c
	c2.ID, c2.Member = NewID(), c.Member+1
	if _, err := l.Reserve(ctx, &c2); err != nil {
		t.Fatal(err)
	}
	c3 := c2
	c3.ID, c3.Member = NewID(), c.Member+2
	if err := l.Fits(ctx, &c3); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("third 5 MiB contract in a 12 MiB voucher: %v, want ErrNoRoom", err)
	}
	l.Release(c.ID)
	free = 4 << 20
	if err := l.Fits(ctx, &c3); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("5 MiB contract with 4 MiB of disk: %v, want ErrNoRoom", err)
	}
	free = 100 << 20
	if err := l.Fits(ctx, &c3); err != nil {
		t.Fatalf("after a release: %v", err)
	}
	// A reservation lasts as long as its grant: once it lapses, its upload
	// session is closed and the room comes back.
	l.now = func() time.Time { return time.Now().Add(GrantTTL + time.Minute) }
	if n := l.Reserved(); n != 0 {
		t.Fatalf("%d bytes reserved after every grant lapsed, want 0", n)
	}
}

// TestLedgerSameIDOtherSize: a reservation under an ID already reserved
// with another size is checked for the difference and counts it, and no
// release takes the total below zero.
func TestLedgerSameIDOtherSize(t *testing.T) {
	dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 12 << 20}}}
	l := NewLedger(dir, 1, nil)
	ctx := context.Background()
	c, _, _ := fixedContract(t)
	c.Object = 0
	c.Size = 1 << 20
	if _, err := l.Reserve(ctx, c); err != nil {
		t.Fatal(err)
	}
	big := *c
	big.Size = 90 << 20
	if _, err := l.Reserve(ctx, &big); !errors.Is(err, ErrNoRoom) || l.Reserved() != 1<<20 {
		t.Fatalf("90 MiB under a reserved ID in a 12 MiB voucher: %v, reserved %d; want ErrNoRoom and 1 MiB", err, l.Reserved())
	}
	grown := *c
	grown.Size = 10 << 20
	if g, err := l.Reserve(ctx, &grown); err != nil || g.MaxBytes != 10<<20 || l.Reserved() != 10<<20 {
		t.Fatalf("10 MiB under the ID: %v, grant %d, reserved %d; want 10 MiB reserved once", err, g.MaxBytes, l.Reserved())
	}
	other := *c
	other.ID = NewID()
	other.Size = 3 << 20
	if err := l.Fits(ctx, &other); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("3 MiB more beside 10 MiB in a 12 MiB voucher: %v, want ErrNoRoom", err)
	}
	if _, err := l.Reserve(ctx, c); err != nil || l.Reserved() != 1<<20 {
		t.Fatalf("shrinking back to 1 MiB: %v, reserved %d", err, l.Reserved())
	}
	l.Release(c.ID)
	l.Release(c.ID)
	if n := l.Reserved(); n != 0 {
		t.Fatalf("reserved %d after releasing twice, want 0", n)
	}
	if err := l.Fits(ctx, &other); err != nil {
		t.Fatalf("3 MiB in an empty ledger: %v", err)
	}
}

// TestLedgerMemberShare: one member's open reservations hold at most a
// quarter of the room, or the chain's largest data object if more, so
// another member still gets room; a contract larger than the chain's
// largest data object is refused as malformed; a grant lasts the Ledger's
// grant TTL, and so does the reservation.
func TestLedgerMemberShare(t *testing.T) {
	dir := fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 100, SizeLimit: 1 << 30}}, largest: 1 << 20}
	l := NewLedger(dir, 1, func() (uint64, error) { return 10 << 20, nil }, WithGrantTTL(time.Minute))
	ctx := context.Background()
	c, _, _ := fixedContract(t)
	c.Object = 0
	contract := func(member chain.MemberID, size uint64) *Contract {
		cc := *c
		cc.ID, cc.Member, cc.Size = NewID(), member, size
		return &cc
	}
	if err := l.Fits(ctx, contract(1, 10<<20)); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "at most 1048576 bytes") {
		t.Fatalf("10 MiB when the chain takes 1 MiB objects: %v, want ErrMalformed naming the limit", err)
	}
	if _, err := l.Reserve(ctx, contract(1, 10<<20)); !errors.Is(err, ErrMalformed) || l.Reserved() != 0 {
		t.Fatalf("reserving 10 MiB when the chain takes 1 MiB objects: %v, reserved %d; want ErrMalformed and nothing", err, l.Reserved())
	}
	// A quarter of 10 MiB is 2.5 MiB: two 1 MiB contracts, not three.
	for i := range 2 {
		g, err := l.Reserve(ctx, contract(1, 1<<20))
		if err != nil {
			t.Fatalf("member 1's contract %d: %v", i, err)
		}
		if d := time.Until(g.Expires); d > time.Minute || d < 0 {
			t.Fatalf("grant lasts %v, want at most the Ledger's minute", d)
		}
	}
	third := contract(1, 1<<20)
	if err := l.Fits(ctx, third); !errors.Is(err, ErrNoRoom) || !strings.Contains(err.Error(), "member 1") {
		t.Fatalf("member 1's third MiB: %v, want ErrNoRoom naming the member", err)
	}
	if _, err := l.Reserve(ctx, third); !errors.Is(err, ErrNoRoom) || l.ReservedBy(1) != 2<<20 {
		t.Fatalf("reserving member 1's third MiB: %v, member 1 holds %d; want ErrNoRoom and 2 MiB", err, l.ReservedBy(1))
	}
	if _, err := l.Reserve(ctx, contract(2, 1<<10)); err != nil {
		t.Fatalf("member 2's KiB beside member 1's share: %v", err)
	}
	// The floor is the chain's largest object: with 2 MiB of room, one
	// member still reserves a whole 1 MiB object.
	small := NewLedger(dir, 1, func() (uint64, error) { return 2 << 20, nil })
	if _, err := small.Reserve(ctx, contract(3, 1<<20)); err != nil {
		t.Fatalf("one largest object in a small room: %v", err)
	}
	if err := small.Fits(ctx, contract(3, 1)); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("a byte more than the largest object in a small room: %v, want ErrNoRoom", err)
	}
	// The reservations lapse with their grants.
	l.now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	if n, m := l.Reserved(), l.ReservedBy(1); n != 0 || m != 0 {
		t.Fatalf("reserved %d, member 1 %d after the grants lapsed; want 0", n, m)
	}
	if _, err := l.Reserve(ctx, third); err != nil {
		t.Fatalf("member 1's MiB after its grants lapsed: %v", err)
	}
}

// fakeDir is a Directory for unit tests of the room arithmetic alone; its
// chain takes data objects of up to largest bytes (the chain's default when
// 0).
type fakeDir struct {
	Directory
	bucket  chain.StorageBucket
	largest uint64
}

func (f fakeDir) Params(context.Context) (chain.Params, error) {
	n := f.largest
	if n == 0 {
		n = chain.DefaultMaxDataObjectSize
	}
	return chain.Params{Limits: chain.Limits{MaxDataObjectSize: n}}, nil
}

func (f fakeDir) StorageBucket(context.Context, chain.StorageBucketID) (chain.StorageBucket, error) {
	return f.bucket, nil
}

// TestLedgerRepeatReadsNoChain: a repeated CONSIGN of a contract reserved
// already at its size is granted from the reservation, without a chain read
// (here the chain fails by then); one that grows must read the chain.
func TestLedgerRepeatReadsNoChain(t *testing.T) {
	down := errors.New("chain unreachable")
	dir := &flakyDir{fakeDir: fakeDir{bucket: chain.StorageBucket{Voucher: chain.Voucher{ObjectsLimit: 10, SizeLimit: 12 << 20}}}}
	l := NewLedger(dir, 1, nil)
	ctx := context.Background()
	c, _, _ := fixedContract(t)
	c.Object = 0
	first, err := l.Reserve(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	dir.err = down
	reads := dir.reads
	again, err := l.Reserve(ctx, c)
	if dir.reads != reads {
		t.Fatalf("a repeated CONSIGN read the bucket %d times, want none", dir.reads-reads)
	}
	if err != nil || again.Session == first.Session || l.Reserved() != c.Size {
		t.Fatalf("the same contract again with the chain down: %v, new session %v, reserved %d; want a new grant and %d reserved",
			err, again.Session != first.Session, l.Reserved(), c.Size)
	}
	grown := *c
	grown.Size++
	if _, err := l.Reserve(ctx, &grown); !errors.Is(err, down) || l.Reserved() != c.Size {
		t.Fatalf("a grown contract with the chain down: %v, reserved %d; want the chain's error and %d reserved", err, l.Reserved(), c.Size)
	}
}

// flakyDir is a fakeDir that counts StorageBucket reads and fails them
// with err when set.
type flakyDir struct {
	fakeDir
	err   error
	reads int
}

func (f *flakyDir) StorageBucket(ctx context.Context, id chain.StorageBucketID) (chain.StorageBucket, error) {
	f.reads++
	if f.err != nil {
		return chain.StorageBucket{}, f.err
	}
	return f.fakeDir.StorageBucket(ctx, id)
}
