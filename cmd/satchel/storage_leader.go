package main

// `satchel storage leader`: the storage lead's transactions on buckets,
// bags, voucher limits, policies and the blacklist.

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() { registerStorageCommand(newStorageLeaderCmd) }

func newStorageLeaderCmd(app *App) *cobra.Command {
	return groupCmd("leader", "Storage lead duties: buckets, bags, voucher limits, policies, blacklist",
		`Commands of the storage working group lead. They sign with -k/--key PATH, else
key in the config, else the storage lead key `+"`satchel chain init`"+` wrote under the
home (HOME/keys/storage-lead.key).`,
		newStorageCreateBucketCmd(app),
		newStorageDeleteBucketCmd(app),
		newStorageUpdateBucketStatusCmd(app),
		newStorageSetBucketLimitsCmd(app),
		newStorageInviteOperatorCmd(app),
		newStorageCancelInvitationCmd(app),
		newStorageRemoveOperatorCmd(app),
		newStorageUpdateBagCmd(app),
		newStorageBucketsPerBagLimitCmd(app),
		newStorageUpdateVoucherLimitsCmd(app),
		newStorageDynamicBagPolicyCmd(app),
		newStorageUpdateBlacklistCmd(app),
		newStorageUploadingBlockedCmd(app),
		newStorageMaxObjectSizeCmd(app),
		newStoragePendingObjectExpiryCmd(app), newStorageMembersPerBlockCmd(app), // storage_limits.go
		newStorageSetMemberInvitesCmd(app), newStorageOpenMembersPerBlockCmd(app), newStorageInitialInvitesCmd(app), // member_invite.go
	)
}

// storageLeadTx is a transaction the storage lead signs.
func storageLeadTx(m chain.Msg, action string, done func([]chain.Event) (string, map[string]any)) tx {
	return tx{role: storageLeadRole, msg: m, action: action, done: done}
}

func newStorageCreateBucketCmd(app *App) *cobra.Command {
	var accepting *valueFlag[bool]
	var objects, size *valueFlag[uint64]
	var worker *valueFlag[chain.WorkerID]
	return txCommand{
		use:   "create-bucket -n OBJECTS -s SIZE [-a yes|no] [-w WORKER]",
		short: "Create a storage bucket with voucher limits. Requires the storage lead",
		long: `Create a storage bucket. Its voucher limits (-n objects, -s total size) bound
what the bags placed in it may hold, and may not exceed the global voucher max
limits (update-voucher-limits). -w invites a storage worker as its operator at
once. Prints the new bucket's ID.`,
		example: `  satchel storage leader create-bucket -n 10000 -s 10GiB -a yes -y
  satchel storage leader create-bucket --objects 500 --size 1TB -a no -w 2`,
		flags: func(cmd *cobra.Command) {
			accepting = acceptingFlag(cmd, "no", "whether the bucket accepts new bags: yes or no")
			objects = countFlag(cmd, "objects", "n", "voucher limit: the most data objects the bucket stores (required)")
			size = sizeFlag(cmd, "size", "s", "voucher limit: the most bytes the bucket stores, e.g. 10GiB or 500MB (required)")
			worker = workerFlag(cmd, "storage worker to invite as the bucket's operator", false)
			requiredFlags(cmd, "objects", "size")
		},
		build: func(cmd *cobra.Command, _ []string) (tx, error) {
			m := chain.MsgCreateStorageBucket{AcceptingNewBags: accepting.value, ObjectsLimit: objects.value, SizeLimit: size.value}
			action := fmt.Sprintf("Create a storage bucket: accepting new bags %s, voucher limits %d objects and %s", yesNo(m.AcceptingNewBags), m.ObjectsLimit, formatBytes(m.SizeLimit))
			if cmd.Flags().Changed("workerId") {
				w := worker.value
				m.InviteWorker = &w
				action += fmt.Sprintf(", inviting storage worker %d as its operator", w)
			}
			return storageLeadTx(m, action, func(ev []chain.Event) (string, map[string]any) {
				c, ok := chain.FindEvent[chain.StorageBucketCreated](ev)
				if !ok {
					return "created a storage bucket (no StorageBucketCreated event)", nil
				}
				line := fmt.Sprintf("created storage bucket %d", c.Bucket)
				if m.InviteWorker != nil {
					line += fmt.Sprintf(" and invited storage worker %d to operate it", *m.InviteWorker)
				}
				return line, map[string]any{"bucket": c.Bucket}
			}), nil
		},
	}.command(app)
}

func newStorageDeleteBucketCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	return txCommand{
		use:     "delete-bucket -i BUCKET",
		short:   "Delete a storage bucket with no bags and no operator. Requires the storage lead",
		example: `  satchel storage leader delete-bucket -i 3 -y`,
		flags:   func(cmd *cobra.Command) { bucket = storageBucketFlag(cmd) },
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgDeleteStorageBucket{Bucket: bucket.value}
			return storageLeadTx(m, fmt.Sprintf("Delete storage bucket %d", m.Bucket),
				doneLine(fmt.Sprintf("deleted storage bucket %d", m.Bucket), map[string]any{"bucket": m.Bucket})), nil
		},
	}.command(app)
}

func newStorageUpdateBucketStatusCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	var accepting *valueFlag[bool]
	return txCommand{
		use:     "update-bucket-status -i BUCKET -a yes|no",
		short:   `Update a storage bucket's status ("acceptingNewBags"). Requires the storage lead`,
		example: `  satchel storage leader update-bucket-status -i 3 -a no -y`,
		flags: func(cmd *cobra.Command) {
			bucket = storageBucketFlag(cmd)
			accepting = acceptingFlag(cmd, "", "whether the bucket accepts new bags: yes or no (required)")
			requiredFlags(cmd, "acceptingBags")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgUpdateStorageBucketStatus{Bucket: bucket.value, AcceptingNewBags: accepting.value}
			return storageLeadTx(m, fmt.Sprintf("Set storage bucket %d accepting new bags: %s", m.Bucket, yesNo(m.AcceptingNewBags)),
				doneLine(fmt.Sprintf("storage bucket %d accepting new bags: %s", m.Bucket, yesNo(m.AcceptingNewBags)),
					map[string]any{"bucket": m.Bucket, "acceptingNewBags": m.AcceptingNewBags})), nil
		},
	}.command(app)
}

func newStorageSetBucketLimitsCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	var objects, size *valueFlag[uint64]
	return txCommand{
		use:   "set-bucket-limits -i BUCKET -n OBJECTS -s SIZE",
		short: "Set a storage bucket's voucher limits. Requires the storage lead",
		long: `Set a storage bucket's voucher limits: the most objects and bytes its bags may
hold. They may not exceed the global voucher max limits. Limits below the
current use are allowed: the bucket is then full until objects are deleted.`,
		example: `  satchel storage leader set-bucket-limits -i 3 -n 20000 -s 20GiB -y`,
		flags: func(cmd *cobra.Command) {
			bucket = storageBucketFlag(cmd)
			objects = countFlag(cmd, "objects", "n", "the most data objects the bucket stores (required)")
			size = sizeFlag(cmd, "size", "s", "the most bytes the bucket stores, e.g. 10GiB (required)")
			requiredFlags(cmd, "objects", "size")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgSetStorageBucketVoucherLimits{Bucket: bucket.value, ObjectsLimit: objects.value, SizeLimit: size.value}
			return storageLeadTx(m, fmt.Sprintf("Set storage bucket %d voucher limits to %d objects and %s", m.Bucket, m.ObjectsLimit, formatBytes(m.SizeLimit)),
				doneLine(fmt.Sprintf("storage bucket %d voucher limits: %d objects, %s", m.Bucket, m.ObjectsLimit, formatBytes(m.SizeLimit)),
					map[string]any{"bucket": m.Bucket, "objectsLimit": m.ObjectsLimit, "sizeLimit": m.SizeLimit})), nil
		},
	}.command(app)
}

func newStorageInviteOperatorCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	var worker *valueFlag[chain.WorkerID]
	return txCommand{
		use:   "invite-bucket-operator -i BUCKET -w WORKER",
		short: "Invite a storage worker to operate a storage bucket. Requires the storage lead",
		long: `Invite a storage worker to operate a bucket. The bucket must have no operator
and no pending invitation, and the worker must not operate or be invited to
another storage bucket: a worker operates one storage bucket at a time.`,
		example: `  satchel storage leader invite-bucket-operator -i 3 -w 0 -y`,
		flags: func(cmd *cobra.Command) {
			bucket = storageBucketFlag(cmd)
			worker = workerFlag(cmd, "storage worker to invite (required)", true)
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgInviteStorageBucketOperator{Bucket: bucket.value, Worker: worker.value}
			return storageLeadTx(m, fmt.Sprintf("Invite storage worker %d to operate storage bucket %d", m.Worker, m.Bucket),
				doneLine(fmt.Sprintf("invited storage worker %d to operate storage bucket %d", m.Worker, m.Bucket),
					map[string]any{"bucket": m.Bucket, "worker": m.Worker})), nil
		},
	}.command(app)
}

func newStorageCancelInvitationCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	return txCommand{
		use:     "cancel-invitation -i BUCKET",
		short:   "Cancel a storage bucket's pending operator invitation. Requires the storage lead",
		example: `  satchel storage leader cancel-invitation -i 3 -y`,
		flags:   func(cmd *cobra.Command) { bucket = storageBucketFlag(cmd) },
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgCancelStorageBucketInvitation{Bucket: bucket.value}
			return storageLeadTx(m, fmt.Sprintf("Cancel the pending operator invitation of storage bucket %d", m.Bucket),
				func(ev []chain.Event) (string, map[string]any) {
					if c, ok := chain.FindEvent[chain.StorageInvitationCancelled](ev); ok {
						return fmt.Sprintf("cancelled the invitation of storage worker %d to storage bucket %d", c.Worker, c.Bucket),
							map[string]any{"bucket": c.Bucket, "worker": c.Worker}
					}
					return fmt.Sprintf("cancelled the invitation to storage bucket %d", m.Bucket), map[string]any{"bucket": m.Bucket}
				}), nil
		},
	}.command(app)
}

func newStorageRemoveOperatorCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.StorageBucketID]
	return txCommand{
		use:     "remove-bucket-operator -i BUCKET",
		short:   "Remove a storage bucket's active operator. Requires the storage lead",
		example: `  satchel storage leader remove-bucket-operator -i 3 -y`,
		flags:   func(cmd *cobra.Command) { bucket = storageBucketFlag(cmd) },
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgRemoveStorageBucketOperator{Bucket: bucket.value}
			return storageLeadTx(m, fmt.Sprintf("Remove the operator of storage bucket %d", m.Bucket),
				func(ev []chain.Event) (string, map[string]any) {
					if r, ok := chain.FindEvent[chain.StorageOperatorRemoved](ev); ok {
						return fmt.Sprintf("removed storage worker %d from storage bucket %d", r.Worker, r.Bucket),
							map[string]any{"bucket": r.Bucket, "worker": r.Worker}
					}
					return fmt.Sprintf("removed the operator of storage bucket %d", m.Bucket), map[string]any{"bucket": m.Bucket}
				}), nil
		},
	}.command(app)
}

func newStorageUpdateBagCmd(app *App) *cobra.Command {
	var bag *valueFlag[chain.BagID]
	add := newListFlag(chain.ParseStorageBucketID, "bucketIds")
	remove := newListFlag(chain.ParseStorageBucketID, "bucketIds")
	return txCommand{
		use:   "update-bag -b BAG [-a BUCKETS] [-r BUCKETS]",
		short: "Add a bag to and remove it from storage buckets. Requires the storage lead",
		long: `Add a bag to storage buckets (-a) and remove it from others (-r). Both take
bucket IDs, repeated (-a 1 -a 2) or comma-separated (-a 1,2). Added buckets
must accept new bags and have voucher room for the bag's objects.

Never remove a bag from a bucket unless other buckets hold it (not only are
assigned it): a bag in no bucket can be lost.`,
		example: `  satchel storage leader update-bag -b dynamic:channel:7 -a 1,2 -r 3 -y
  satchel storage leader update-bag -b static:council -a 0`,
		flags: func(cmd *cobra.Command) {
			bag = bagFlag(cmd)
			cmd.Flags().VarP(add, "add", "a", "storage bucket IDs to add the bag to (repeat or comma-separate)")
			cmd.Flags().VarP(remove, "remove", "r", "storage bucket IDs to remove the bag from (repeat or comma-separate)")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgUpdateBagStorageBuckets{Bag: bag.value, Add: add.values, Remove: remove.values}
			if len(m.Add) == 0 && len(m.Remove) == 0 {
				return tx{}, fmt.Errorf("name storage buckets to add (-a) or remove (-r), e.g. -a 1,2")
			}
			return storageLeadTx(m, fmt.Sprintf("Update the storage buckets of bag %s: add %s, remove %s", m.Bag, joinIDs(m.Add), joinIDs(m.Remove)),
				doneLine(fmt.Sprintf("bag %s: added to storage buckets %s; removed from %s", m.Bag, joinIDs(m.Add), joinIDs(m.Remove)),
					map[string]any{"bag": m.Bag, "added": nonNil(m.Add), "removed": nonNil(m.Remove)})), nil
		},
	}.command(app)
}

func newStorageBucketsPerBagLimitCmd(app *App) *cobra.Command {
	var limit *valueFlag[uint64]
	return txCommand{
		use:     "set-buckets-per-bag-limit -l LIMIT",
		short:   "Set the most storage buckets a bag may be in. Requires the storage lead",
		example: `  satchel storage leader set-buckets-per-bag-limit -l 5 -y`,
		flags:   func(cmd *cobra.Command) { limit = limitFlag(cmd) },
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgSetStorageBucketsPerBagLimit{Limit: limit.value}
			return storageLeadTx(m, fmt.Sprintf("Set the storage buckets per bag limit to %d", m.Limit),
				doneLine(fmt.Sprintf("storage buckets per bag limit: %d", m.Limit), map[string]any{"limit": m.Limit})), nil
		},
	}.command(app)
}

func newStorageUpdateVoucherLimitsCmd(app *App) *cobra.Command {
	var objects, size *valueFlag[uint64]
	return txCommand{
		use:     "update-voucher-limits -n OBJECTS -s SIZE",
		short:   "Set the global max of every storage bucket's voucher limits. Requires the storage lead",
		example: `  satchel storage leader update-voucher-limits -n 1000000 -s 1TiB -y`,
		flags: func(cmd *cobra.Command) {
			objects = countFlag(cmd, "objects", "n", "the most objects any bucket's voucher may allow (required)")
			size = sizeFlag(cmd, "size", "s", "the most bytes any bucket's voucher may allow, e.g. 1TiB (required)")
			requiredFlags(cmd, "objects", "size")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgSetStorageBucketsVoucherMaxLimits{Objects: objects.value, Size: size.value}
			return storageLeadTx(m, fmt.Sprintf("Set the storage bucket voucher max limits to %d objects and %s", m.Objects, formatBytes(m.Size)),
				doneLine(fmt.Sprintf("storage bucket voucher max limits: %d objects, %s", m.Objects, formatBytes(m.Size)),
					map[string]any{"objects": m.Objects, "size": m.Size})), nil
		},
	}.command(app)
}

func newStorageDynamicBagPolicyCmd(app *App) *cobra.Command {
	var typ *valueFlag[chain.DynamicBagType]
	var number *valueFlag[uint64]
	return txCommand{
		use:   "update-dynamic-bag-policy -t Member|Channel -n BUCKETS",
		short: "Set how many storage buckets a new dynamic bag is placed in. Requires the storage lead",
		long: `Set the number of storage buckets each new dynamic bag of a type is placed in.
Placement picks them pseudo-randomly among the buckets accepting new bags with
voucher room; when too few qualify, creating the bag (the member or channel)
fails and says so.`,
		example: `  satchel storage leader update-dynamic-bag-policy -t Channel -n 3 -y`,
		flags: func(cmd *cobra.Command) {
			typ = dynamicBagTypeFlag(cmd)
			number = countFlag(cmd, "number", "n", "number of storage buckets per new bag (required)")
			requiredFlags(cmd, "number")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgSetStorageDynamicBagPolicy{BagType: typ.value, StorageBuckets: number.value}
			buckets := chain.Plural(int(m.StorageBuckets), "storage bucket")
			return storageLeadTx(m, fmt.Sprintf("Place each new %s bag in %s", m.BagType, buckets),
				doneLine(fmt.Sprintf("new %s bags are placed in %s", m.BagType, buckets),
					map[string]any{"type": m.BagType, "storageBuckets": m.StorageBuckets})), nil
		},
	}.command(app)
}

func newStorageUpdateBlacklistCmd(app *App) *cobra.Command {
	add := newListFlag(parseContentID, "cids")
	remove := newListFlag(parseContentID, "cids")
	return txCommand{
		use:   "update-blacklist [-a CIDS] [-r CIDS]",
		short: "Add content IDs to and remove them from the blacklist. Requires the storage lead",
		long: `Add content IDs to the blacklist (-a) or remove them (-r); repeat the flags or
comma-separate the IDs. Objects with a blacklisted content ID cannot be
registered.`,
		example: `  satchel storage leader update-blacklist -a bafkreiabc,bafkreidef -r bafkreighi -y`,
		flags: func(cmd *cobra.Command) {
			cmd.Flags().VarP(add, "add", "a", "content IDs to blacklist")
			cmd.Flags().VarP(remove, "remove", "r", "content IDs to remove from the blacklist")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgUpdateBlacklist{Add: add.values, Remove: remove.values}
			if len(m.Add) == 0 && len(m.Remove) == 0 {
				return tx{}, fmt.Errorf("name content IDs to add (-a) or remove (-r)")
			}
			return storageLeadTx(m, fmt.Sprintf("Update the blacklist: add %s; remove %s", joinStrings(m.Add), joinStrings(m.Remove)),
				doneLine(fmt.Sprintf("blacklist: added %s; removed %s", joinStrings(m.Add), joinStrings(m.Remove)),
					map[string]any{"added": nonNil(m.Add), "removed": nonNil(m.Remove)})), nil
		},
	}.command(app)
}

func parseContentID(s string) (string, error) {
	s = strings.TrimSpace(s)
	if err := chain.ValidateContentID(s); err != nil {
		return "", err
	}
	return s, nil
}

func newStorageUploadingBlockedCmd(app *App) *cobra.Command {
	return txCommand{
		use:   "set-uploading-blocked on|off",
		short: "Block or unblock registering data objects network-wide. Requires the storage lead",
		example: `  satchel storage leader set-uploading-blocked on -y
  satchel storage leader set-uploading-blocked off -y`,
		args: cobra.ExactArgs(1),
		build: func(_ *cobra.Command, args []string) (tx, error) {
			blocked, err := parseOnOff(args[0])
			if err != nil {
				return tx{}, fmt.Errorf("uploading blocked %w", err)
			}
			verb := "Unblock"
			if blocked {
				verb = "Block"
			}
			return storageLeadTx(chain.MsgSetUploadingBlocked{Blocked: blocked}, verb+" uploading (registering data objects) network-wide",
				doneLine("uploading blocked: "+onOff(blocked), map[string]any{"uploadingBlocked": blocked})), nil
		},
	}.command(app)
}

func newStorageMaxObjectSizeCmd(app *App) *cobra.Command {
	return txCommand{
		use:     "set-max-object-size SIZE",
		short:   "Set the largest data object size accepted. Requires the storage lead",
		example: `  satchel storage leader set-max-object-size 10GiB -y`,
		args:    cobra.ExactArgs(1),
		build: func(_ *cobra.Command, args []string) (tx, error) {
			size, err := parseBytes(args[0])
			if err != nil {
				return tx{}, err
			}
			return storageLeadTx(chain.MsgSetMaxDataObjectSize{Size: size}, fmt.Sprintf("Set the max data object size to %s (%d bytes)", formatBytes(size), size),
				doneLine(fmt.Sprintf("max data object size: %s", formatBytes(size)), map[string]any{"maxDataObjectSize": size})), nil
		},
	}.command(app)
}
