package state

import (
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"

	"github.com/ipfs/go-cid"
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
