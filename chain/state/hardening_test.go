package state

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
	"github.com/multiformats/go-multibase"
	"github.com/multiformats/go-multihash"

	"github.com/satchel-net/satchel/chain"
)

// testCID returns a real CIDv1 (raw, sha2-256) named by name, in its
// canonical base32 form.
func testCID(name string) string { return testCIDv(name, 1).String() }

func testCIDv(name string, version uint64) cid.Cid {
	d := sha256.Sum256([]byte(name))
	mh, err := multihash.Encode(d[:], multihash.SHA2_256)
	if err != nil {
		panic(err)
	}
	if version == 0 {
		return cid.NewCidV0(mh)
	}
	return cid.NewCidV1(cid.Raw, mh)
}

func TestBucketFullNamesTheLimitHit(t *testing.T) {
	const mib = 1 << 20
	h := newHarness(t)
	bag, b := h.channelBag(1000, 50*mib)
	reg := func(size uint64, name string) chain.MsgRegisterDataObjects {
		return chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: size, ContentID: testCID(name)}}}
	}
	for i := range 16 {
		h.do(alice, reg(3*mib, fmt.Sprint("small", i)))
	}
	h.do(alice, reg(2*mib, "last"))
	if v := h.sbucket(b).Voucher; v.ObjectsUsed != 17 || v.SizeUsed != 50*mib {
		t.Fatalf("voucher %+v; want 17 objects and 50 MiB used", v)
	}
	// Full by size, with room for objects: the size limit is named.
	r := h.fail(alice, reg(mib, "more"), chain.ErrBucketFull)
	want := "storage bucket 0 is full by size (50.0 MiB of 50.0 MiB used, 1.0 MiB more asked); ask the storage lead to raise its size limit"
	if !strings.Contains(r.Log, want) {
		t.Errorf("log %q\nwant it to contain %q", r.Log, want)
	}
	// A size limit lowered below the use: still full by size, not by
	// objects, even for a small object.
	h.do(storageLead, chain.MsgSetStorageBucketVoucherLimits{Bucket: b, ObjectsLimit: 1000, SizeLimit: 40 * mib})
	r = h.fail(alice, reg(1, "tiny"), chain.ErrBucketFull)
	want = "storage bucket 0 is full by size (50.0 MiB of 40.0 MiB used, 1 B more asked); ask the storage lead to raise its size limit"
	if !strings.Contains(r.Log, want) {
		t.Errorf("log %q\nwant it to contain %q", r.Log, want)
	}
	// Full by objects, with room for bytes.
	h.do(storageLead, chain.MsgSetStorageBucketVoucherLimits{Bucket: b, ObjectsLimit: 17, SizeLimit: 100 * mib})
	r = h.fail(alice, reg(mib, "more"), chain.ErrBucketFull)
	want = "storage bucket 0 is full by objects (17 of 17 objects used, 1 more asked); ask the storage lead to raise its objects limit"
	if !strings.Contains(r.Log, want) {
		t.Errorf("log %q\nwant it to contain %q", r.Log, want)
	}
	// Both limits hit: both are named.
	h.do(storageLead, chain.MsgSetStorageBucketVoucherLimits{Bucket: b, ObjectsLimit: 17, SizeLimit: 50 * mib})
	r = h.fail(alice, reg(mib, "more"), chain.ErrBucketFull)
	want = "is full by objects and by size (17 of 17 objects used, 1 more asked; 50.0 MiB of 50.0 MiB used, 1.0 MiB more asked); ask the storage lead to raise its objects limit and size limit"
	if !strings.Contains(r.Log, want) {
		t.Errorf("log %q\nwant it to contain %q", r.Log, want)
	}
}

// spellings returns one CID's other spellings: base58btc, upper-case
// base32 and (for dag-pb) CIDv0.
func spellings(t *testing.T, c cid.Cid) []string {
	t.Helper()
	b58, err := c.StringOfBase(multibase.Base58BTC)
	if err != nil {
		t.Fatal(err)
	}
	up, err := c.StringOfBase(multibase.Base32Upper)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{b58, up}
	if c.Type() == cid.DagProtobuf {
		out = append(out, cid.NewCidV0(c.Hash()).String())
	}
	return out
}

// TestContentIDsCanonical: registered content IDs are stored as CIDv1
// lower-case base32, whatever spelling was sent; what does not parse is
// refused with ErrBadContentID; the blacklist catches every spelling of a
// blacklisted root.
func TestContentIDsCanonical(t *testing.T) {
	h := newHarness(t)
	bag, _ := h.channelBag(100, 1<<30)
	reg := func(cs ...string) chain.MsgRegisterDataObjects {
		m := chain.MsgRegisterDataObjects{Bag: bag}
		for _, c := range cs {
			m.Objects = append(m.Objects, chain.ObjectSpec{Size: 10, ContentID: c})
		}
		return m
	}
	// Stored canonical.
	raw := testCIDv("raw", 1)
	pb := cid.NewCidV1(cid.DagProtobuf, testCIDv("pb", 1).Hash())
	sent := append(spellings(t, raw), spellings(t, pb)...)
	ev := event[chain.ObjectsRegistered](t, h.do(alice, reg(sent...)))
	for i, o := range ev.Objects {
		want := raw.String()
		if i >= 2 {
			want = pb.String()
		}
		if o.ContentID != want {
			t.Errorf("sent %s, event says %s; want %s", sent[i], o.ContentID, want)
		}
		got := queryAs[chain.DataObject](t, h.m, chain.QueryObject, chain.ObjectRef{Bag: bag, ID: o.ID})
		if got.ContentID != want {
			t.Errorf("sent %s, stored %s; want %s", sent[i], got.ContentID, want)
		}
	}
	// Refused: not a CID, empty, too long, a multihash alone.
	for _, bad := range []string{"hello", "", strings.Repeat("b", chain.MaxContentIDLen+1), "QmNotACid", "bafy" + strings.Repeat("!", 10)} {
		r := h.fail(alice, reg(testCID("ok"), bad), chain.ErrBadContentID)
		if !strings.Contains(r.Log, "object 1: content ID") {
			t.Errorf("log %q does not name the object", r.Log)
		}
	}

	// The blacklist holds the canonical form and catches every spelling.
	evil := cid.NewCidV1(cid.DagProtobuf, testCIDv("evil", 1).Hash())
	v0 := cid.NewCidV0(evil.Hash()).String()
	bl := event[chain.BlacklistUpdated](t, h.do(storageLead, chain.MsgUpdateBlacklist{Add: []string{v0}}))
	if len(bl.Added) != 1 || bl.Added[0] != evil.String() {
		t.Fatalf("blacklist event %+v; want %s", bl, evil)
	}
	if p := h.params(); len(p.Blacklist) != 1 || p.Blacklist[0] != evil.String() {
		t.Fatalf("blacklist %v", p.Blacklist)
	}
	for _, s := range append(spellings(t, evil), evil.String()) {
		h.fail(alice, reg(s), chain.ErrBlacklisted)
		if !h.params().Blacklisted(s) {
			t.Errorf("Params.Blacklisted(%s) = false", s)
		}
	}
	// Two spellings of one CID in one update are a duplicate; an unparsable
	// entry is refused.
	up, _ := evil.StringOfBase(multibase.Base32Upper)
	h.fail(storageLead, chain.MsgUpdateBlacklist{Add: []string{v0, up}}, chain.ErrInvalid)
	h.fail(storageLead, chain.MsgUpdateBlacklist{Add: []string{"evil"}}, chain.ErrBadContentID)
	// Removing by another spelling removes it.
	b58, _ := evil.StringOfBase(multibase.Base58BTC)
	bl = event[chain.BlacklistUpdated](t, h.do(storageLead, chain.MsgUpdateBlacklist{Remove: []string{b58}}))
	if len(bl.Removed) != 1 || len(h.params().Blacklist) != 0 {
		t.Fatalf("remove by base58: %+v, blacklist %v", bl, h.params().Blacklist)
	}
	h.do(alice, reg(v0))

	// The same bytes under the other object codec are the same content: a
	// root blacklisted as raw is caught registered as dag-pb (v0 or v1),
	// and the reverse.
	rawEvil := testCIDv("raw evil", 1)
	h.do(storageLead, chain.MsgUpdateBlacklist{Add: []string{rawEvil.String()}})
	for _, s := range []string{cid.NewCidV0(rawEvil.Hash()).String(), cid.NewCidV1(cid.DagProtobuf, rawEvil.Hash()).String()} {
		r := h.fail(alice, reg(s), chain.ErrBlacklisted)
		if !strings.Contains(r.Log, "as "+rawEvil.String()) {
			t.Errorf("log %q does not name the blacklisted form", r.Log)
		}
		if !h.params().Blacklisted(s) {
			t.Errorf("Params.Blacklisted(%s) = false", s)
		}
	}
	h.do(storageLead, chain.MsgUpdateBlacklist{Add: []string{cid.NewCidV0(evil.Hash()).String()}})
	h.fail(alice, reg(cid.NewCidV1(cid.Raw, evil.Hash()).String()), chain.ErrBlacklisted)
	// A codec no data object has is refused.
	r := h.fail(alice, reg(cid.NewCidV1(cid.DagCBOR, raw.Hash()).String()), chain.ErrBadContentID)
	if !strings.Contains(r.Log, "dag-pb (UnixFS root) or raw") {
		t.Errorf("log %q", r.Log)
	}
}

// TestGenesisBlacklistCanonical: a genesis blacklist in any spelling is
// stored canonical and catches the other spellings.
func TestGenesisBlacklistCanonical(t *testing.T) {
	evil := cid.NewCidV1(cid.DagProtobuf, testCIDv("evil", 1).Hash())
	h := newHarness(t, func(g *chain.Genesis) { g.Blacklist = []string{cid.NewCidV0(evil.Hash()).String()} })
	if p := h.params(); len(p.Blacklist) != 1 || p.Blacklist[0] != evil.String() {
		t.Fatalf("blacklist %v; want [%s]", p.Blacklist, evil)
	}
	bag, _ := h.channelBag(100, 1<<30)
	up, _ := evil.StringOfBase(multibase.Base32Upper)
	h.fail(alice, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{{Size: 1, ContentID: up}}}, chain.ErrBlacklisted)
}

// TestMembersPerBlock: one block registers at most membersPerBlock
// members, however many accounts ask; the next block has a fresh quota; the
// storage lead sets the limit.
func TestMembersPerBlock(t *testing.T) {
	h := newHarness(t)
	if got := h.params().Limits.MembersPerBlock; got != chain.DefaultMembersPerBlock {
		t.Fatalf("default %d; want %d", got, chain.DefaultMembersPerBlock)
	}
	flood := func(n int) []chain.TxResult {
		txs := make([][]byte, n)
		for i := range txs {
			txs[i] = h.sign(testKey(fmt.Sprint("flood", h.height, i)), chain.MsgCreateMember{})
		}
		return h.block(txs...)
	}
	count := func(res []chain.TxResult) (ok, refused int) {
		for _, r := range res {
			switch {
			case r.Code == chain.CodeOK:
				ok++
			case r.Code == chain.CodeMembersPerBlock:
				refused++
				if !strings.Contains(r.Log, "try again in the next block") {
					t.Errorf("log %q does not say what to do", r.Log)
				}
			default:
				t.Fatalf("code %d: %s", r.Code, r.Log)
			}
		}
		return ok, refused
	}
	if ok, refused := count(flood(chain.DefaultMembersPerBlock + 5)); ok != chain.DefaultMembersPerBlock || refused != 5 {
		t.Fatalf("%d created, %d refused; want %d and 5", ok, refused, chain.DefaultMembersPerBlock)
	}
	if _, err := queryErr[chain.Member](h.m, chain.QueryMember, chain.MemberID(chain.DefaultMembersPerBlock-1)); err != nil {
		t.Fatalf("member %d: %v", chain.DefaultMembersPerBlock-1, err)
	}
	if _, err := queryErr[chain.Member](h.m, chain.QueryMember, chain.MemberID(chain.DefaultMembersPerBlock)); !errors.Is(err, chain.ErrMemberNotFound) {
		t.Fatalf("member %d: %v; want none past the quota", chain.DefaultMembersPerBlock, err)
	}
	// The next block has a fresh quota.
	h.member(alice)

	h.fail(alice, chain.MsgSetMembersPerBlock{Limit: 2}, chain.ErrUnauthorized)
	h.fail(storageLead, chain.MsgSetMembersPerBlock{Limit: 0}, chain.ErrInvalid)
	if lu := event[chain.LimitsUpdated](t, h.do(storageLead, chain.MsgSetMembersPerBlock{Limit: 2})); lu.Limits.MembersPerBlock != 2 {
		t.Fatal(lu)
	}
	if ok, refused := count(flood(3)); ok != 2 || refused != 1 {
		t.Fatalf("%d created, %d refused; want 2 and 1", ok, refused)
	}
}
