package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/satchel-net/satchel/chain"
)

// testStorageLeader runs the storage lead's commands against the state the
// placement example left: storage buckets 0, 1, 2 (1 not accepting), the
// Channel policy at 2 storage buckets, bag dynamic:channel:0 in 0 and 2.
func testStorageLeader(t *testing.T, tc *testChain) {
	tc.ok("storage", "leader", "set-bucket-limits", "-i", "0", "-n", "200", "-s", "2GiB", "-y")
	var b chain.StorageBucket
	tc.okJSON(&b, "bucket", "show", "0")
	if b.Voucher.ObjectsLimit != 200 || b.Voucher.SizeLimit != 2<<30 || !slices.Contains(b.Bags, chain.ChannelBag(0)) {
		t.Fatalf("bucket 0 after set-bucket-limits: %+v", b)
	}
	if out := tc.ok("storage", "leader", "update-voucher-limits", "-n", "1000", "-s", "10GiB", "-y"); out != "storage bucket voucher max limits: 1000 objects, 10 GiB\n" {
		t.Fatalf("update-voucher-limits: %q", out)
	}
	tc.fails([]string{"exceed the global voucher max limits 1000 objects"},
		"storage", "leader", "set-bucket-limits", "-i", "0", "-n", "2000", "-s", "1GiB", "-y")
	tc.fails([]string{"voucher max limits must be above 0"}, "storage", "leader", "update-voucher-limits", "-n", "0", "-s", "1GiB", "-y")
	tc.fails([]string{"asks for 2 storage buckets, above the new limit 1; lower the policy first"},
		"storage", "leader", "set-buckets-per-bag-limit", "-l", "1", "-y")
	tc.ok("storage", "leader", "set-buckets-per-bag-limit", "-l", "4", "-y")

	// update-bag with a list, and the rule that a bucket with bags stays.
	if out := tc.ok("storage", "leader", "update-bag", "-b", "static:council", "-a", "0,2", "-y"); out != "bag static:council: added to storage buckets 0 2; removed from none\n" {
		t.Fatalf("update-bag: %q", out)
	}
	tc.fails([]string{"storage bucket 1 is not accepting new bags"}, "storage", "leader", "update-bag", "-b", "static:council", "-a", "1", "-y")
	tc.fails([]string{"storage bucket 0 still stores 2 bags; remove them with update-bag first"}, "storage", "leader", "delete-bucket", "-i", "0", "-y")
	tc.ok("storage", "leader", "update-bag", "-b", "static:council", "-r", "0", "-r", "2", "-y")
	tc.fails([]string{"bag static:council is not in storage bucket 2", "satchel bag show BAG"}, "storage", "leader", "update-bag", "-b", "static:council", "-r", "2", "-y")
	tc.fails([]string{"storage bucket 9 does not exist", "satchel bucket list --storage"}, "storage", "leader", "delete-bucket", "-i", "9", "-y")

	tc.ok("storage", "leader", "update-blacklist", "-a", "bafkreifohmhhiz6tkespessyh66fb6c66l7e5w5xq6kr2decf3esldfz7a,BAFKREICEKAELP4UTFERL3MMEO4OZS6CRNJHYTV3QADBNN2VRRMEJJKWDU4", "-y")
	tc.ok("storage", "leader", "update-blacklist", "-r", "zb2rhbEwhWShc7NEmCbu5obETsR2CAaiXU8uXpx4nEEWE3p1C", "-y")
	tc.ok("storage", "leader", "set-uploading-blocked", "on", "-y")
	tc.ok("storage", "leader", "set-max-object-size", "1GiB", "-y")
	tc.ok("storage", "leader", "set-pending-object-expiry", "5000", "-y")
	tc.ok("storage", "leader", "set-members-per-block", "7", "-y")
	tc.fails([]string{`blocks "0": want a whole number above 0`}, "storage", "leader", "set-pending-object-expiry", "0", "-y")
	var p chain.Params
	tc.okJSON(&p, "params")
	if p.Limits.PendingObjectExpiry != 5000 || p.Limits.MembersPerBlock != 7 {
		t.Fatalf("limits %+v; want pendingObjectExpiry 5000, membersPerBlock 7", p.Limits)
	}
	if out := tc.ok("params"); !strings.Contains(out, "5000 blocks") || !strings.Contains(out, "members per block") {
		t.Errorf("params:\n%s", out)
	}
	if !slices.Equal(p.Blacklist, []string{"bafkreifohmhhiz6tkespessyh66fb6c66l7e5w5xq6kr2decf3esldfz7a"}) || !p.UploadingBlocked || p.Limits.MaxDataObjectSize != 1<<30 ||
		p.Limits.StorageBucketsPerBag != 4 || p.Limits.VoucherMaxObjects != 1000 || p.Policy(chain.ChannelBagType).StorageBuckets != 2 {
		t.Fatalf("params: %+v", p)
	}
	if out := tc.ok("storage", "leader", "set-uploading-blocked", "off", "-y"); out != "uploading blocked: off\n" {
		t.Fatalf("set-uploading-blocked off: %q", out)
	}
}

// testStorageOperators runs a storage operator's life cycle: invitation
// (cancelled, with create-bucket -w, busy worker), acceptance with a
// transactor, metadata, accepting pending objects, removal.
func testStorageOperators(t *testing.T, tc *testChain) {
	dir := t.TempDir()
	workerKey, _ := newKeyFile(t, dir, "storage-worker.key")
	transactorKey, tk := newKeyFile(t, dir, "transactor.key")
	stranger, _ := newKeyFile(t, dir, "stranger.key")
	var added txOut
	tc.okJSON(&added, "workers", "add", "-g", "storage", "-a", workerKey, "-y")
	w := itoa(int(*added.Worker))

	tc.ok("storage", "leader", "invite-bucket-operator", "-i", "0", "-w", w, "-y")
	if out := tc.ok("storage", "leader", "cancel-invitation", "-i", "0", "-y"); out != "cancelled the invitation of storage worker "+w+" to storage bucket 0\n" {
		t.Fatalf("cancel-invitation: %q", out)
	}
	var created txOut
	tc.okJSON(&created, "storage", "leader", "create-bucket", "-n", "10", "-s", "1MiB", "-w", w, "-y")
	nb := string(created.Bucket)
	tc.fails([]string{"storage worker " + w + " already operates or is invited to storage bucket " + nb},
		"storage", "leader", "invite-bucket-operator", "-i", "0", "-w", w, "-y")
	tc.fails([]string{"has a pending invitation for worker " + w + "; cancel it first"}, "storage", "leader", "delete-bucket", "-i", nb, "-y")
	tc.ok("storage", "leader", "cancel-invitation", "-i", nb, "-y")
	if out := tc.ok("storage", "leader", "delete-bucket", "-i", nb, "-y"); out != "deleted storage bucket "+nb+"\n" {
		t.Fatalf("delete-bucket: %q", out)
	}

	tc.ok("storage", "leader", "invite-bucket-operator", "-i", "0", "-w", w, "-y")
	tc.fails([]string{"only storage worker " + w + "'s role account"},
		"storage", "operator", "accept-invitation", "-i", "0", "-w", w, "-k", stranger, "-y")
	if out := tc.ok("storage", "operator", "accept-invitation", "-i", "0", "-w", w, "-t", string(tk.Account()), "-k", workerKey, "-y"); out != "storage worker "+w+" now operates storage bucket 0 (transactor "+string(tk.Account())+")\n" {
		t.Fatalf("accept-invitation: %q", out)
	}
	tc.ok("storage", "operator", "set-metadata", "-i", "0", "-w", w, "--peer-id", "12D3KooWExample",
		"--addr", "/ip4/10.0.0.1/tcp/4001", "--addr", "/ip4/10.0.0.1/udp/4001/quic-v1", "--location", "no,Oslo", "--coordinates", "59.91,10.75", "-k", workerKey, "-y")
	tc.fails([]string{`location countryCode "NOR"`}, "storage", "operator", "set-metadata", "-i", "0", "-w", w, "--location", "NOR", "-k", workerKey, "-y")
	var b chain.StorageBucket
	tc.okJSON(&b, "bucket", "show", "0")
	if b.OperatorStatus != chain.OperatorActive || b.Transactor != tk.Account() || b.Metadata == nil || b.Metadata.PeerID != "12D3KooWExample" ||
		len(b.Metadata.Multiaddrs) != 2 || b.Metadata.Location.CountryCode != "NO" || b.Metadata.Location.Coordinates.Latitude != 59.91 {
		t.Fatalf("bucket 0 after accept and set-metadata: %+v (metadata %+v)", b, b.Metadata)
	}

	// The channel owner registers objects (no CLI command in this group);
	// the operator's transactor accepts them.
	owner, err := chain.LoadKey(accountKeyFile(tc.cfg))
	if err != nil {
		t.Fatal(err)
	}
	bag := chain.ChannelBag(0)
	res, err := tc.client.Submit(context.Background(), owner, chain.MsgRegisterDataObjects{Bag: bag, Objects: []chain.ObjectSpec{
		{Size: 1000, ContentID: "bafkreicekaelp4utferl3mmeo4ozs6crnjhytv3qadbnn2vrrmejjkwdu4"}, {Size: 2000, ContentID: "bafkreiflv6sefc64rq2nvyulxqltaotcc5psotw7lf2xwpuytaqvuqukky"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := chain.FindEvent[chain.ObjectsRegistered](res.Result.Events)
	if len(reg.Objects) != 2 {
		t.Fatalf("registered %+v", reg)
	}
	ids := reg.Objects[0].ID.String() + "," + reg.Objects[1].ID.String()
	// Pending, it shows when it expires (set-pending-object-expiry 5000 above).
	if exp := reg.Objects[0].ExpiresAt; exp != res.Height+5000 {
		t.Errorf("expiresAt %d; want %d", exp, res.Height+5000)
	} else if out := tc.ok("object", "show", string(bag), reg.Objects[0].ID.String()); !strings.Contains(out, fmt.Sprintf("%d unless accepted", exp)) {
		t.Errorf("object show of a pending object: %s", out)
	}
	tc.fails([]string{"only storage bucket 0's transactor account"},
		"storage", "operator", "accept-objects", "-i", "0", "-w", w, "-b", string(bag), "-o", ids, "-k", stranger, "-y")
	want := "accepted data objects " + strings.ReplaceAll(ids, ",", " ") + " of bag " + string(bag) + "\n"
	if out := tc.ok("storage", "operator", "accept-objects", "-i", "0", "-w", w, "-b", string(bag), "-o", ids, "-k", transactorKey, "-y"); out != want {
		t.Fatalf("accept-objects: %q, want %q", out, want)
	}
	if out := tc.ok("storage", "operator", "accept-objects", "-i", "0", "-w", w, "-b", string(bag), "-o", ids, "-k", transactorKey, "-y"); !strings.HasPrefix(out, "no pending objects among") {
		t.Fatalf("accept-objects again: %q", out)
	}
	var objs []chain.DataObject
	tc.okJSON(&objs, "object", "list", string(bag))
	if len(objs) != 2 || !objs[0].Accepted || !objs[1].Accepted || objs[1].ContentID != "bafkreiflv6sefc64rq2nvyulxqltaotcc5psotw7lf2xwpuytaqvuqukky" {
		t.Fatalf("object list: %+v", objs)
	}
	var o chain.DataObject
	tc.okJSON(&o, "object", "show", string(bag), reg.Objects[1].ID.String())
	if o.Size != 2000 || !o.Accepted || o.Bag != bag {
		t.Fatalf("object show: %+v", o)
	}
	// The ID alone finds the object, as get does: IDs are unique across bags.
	var byID chain.DataObject
	tc.okJSON(&byID, "object", "show", reg.Objects[1].ID.String())
	if byID != o {
		t.Fatalf("object show by ID alone: %+v, want %+v", byID, o)
	}
	tc.fails([]string{"data object 99 does not exist", "satchel object list BAG"}, "object", "show", "99")
	if out := tc.ok("object", "list", string(bag)); !strings.Contains(out, "bafkreicekaelp4utferl3mmeo4ozs6crnjhytv3qadbnn2vrrmejjkwdu4") || !strings.Contains(out, "accepted") {
		t.Errorf("object list:\n%s", out)
	}
	tc.fails([]string{"data object 99 does not exist in bag " + string(bag), "satchel object list BAG"}, "object", "show", string(bag), "99")
	// An object of a bag that does not exist: the bag is what to fix.
	tc.fails([]string{"bag dynamic:channel:99 does not exist", "satchel bag list"}, "object", "show", "dynamic:channel:99", "0")

	if out := tc.ok("storage", "leader", "remove-bucket-operator", "-i", "0", "-y"); out != "removed storage worker "+w+" from storage bucket 0\n" {
		t.Fatalf("remove-bucket-operator: %q", out)
	}
	tc.ok("workers", "remove", "-g", "storage", "-w", w, "-y")
}
