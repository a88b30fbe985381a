package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/satchel-net/satchel/chain"
)

func init() {
	registerGroup(newDistributorCmd)
	registerDistributorCommand(newDistributorLeaderCmd)
	registerDistributorCommand(newDistributorOperatorCmd)
}

// distributorCommands are the constructors of the subcommands of `satchel
// distributor`. Files add theirs with registerDistributorCommand in an init
// function, so the group grows without editing this file.
var distributorCommands []func(*App) *cobra.Command

func registerDistributorCommand(f func(*App) *cobra.Command) {
	distributorCommands = append(distributorCommands, f)
}

func newDistributorCmd(app *App) *cobra.Command {
	cmd := groupCmd("distributor", "Distribution working group: the lead's and the operators' on-chain duties",
		`Commands of the distribution working group. "leader" commands manage bucket
families, distribution buckets, bags and policies and need the distribution
lead's key; "operator" commands are run by distribution workers with their role
account key.

Distribution buckets are named -B {familyId}:{bucketIndex} (e.g. -B 0:1),
families -f, workers -w and bags -b. Every transaction is described and
confirmed first; -y skips the confirmation (required in scripts).`)
	for _, add := range distributorCommands {
		cmd.AddCommand(add(app))
	}
	return cmd
}

func newDistributorLeaderCmd(app *App) *cobra.Command {
	return groupCmd("leader", "Distribution lead duties: families, buckets, bags, limits, policies, operators",
		`Commands of the distribution working group lead. They sign with -k/--key PATH,
else key in the config, else the distribution lead key `+"`satchel chain init`"+` wrote
under the home (HOME/keys/distribution-lead.key).`,
		newDistCancelInvitationCmd(app),
		newDistCreateBucketCmd(app),
		newDistCreateFamilyCmd(app),
		newDistDeleteBucketCmd(app),
		newDistDeleteFamilyCmd(app),
		newDistInviteOperatorCmd(app),
		newDistRemoveOperatorCmd(app),
		newDistFamilyMetadataCmd(app),
		newDistBucketsPerBagLimitCmd(app),
		newDistUpdateBagCmd(app),
		newDistUpdateBucketModeCmd(app),
		newDistUpdateBucketStatusCmd(app),
		newDistDynamicBagPolicyCmd(app),
	)
}

func newDistributorOperatorCmd(app *App) *cobra.Command {
	return groupCmd("operator", "Distribution operator duties: accept an invitation, publish metadata",
		`Commands of a distribution bucket operator (a distribution worker). They sign
with the worker's role account key: -k/--key PATH, key in the config, or the
account key under the home.`,
		newDistAcceptInvitationCmd(app), newDistSetMetadataCmd(app))
}

// Flags shared by the distributor commands.

func distBucketFlag(cmd *cobra.Command) *valueFlag[chain.DistributionBucketID] {
	f := newFlag("", chain.DistributionBucketID{}, chain.ParseDistributionBucketID, "familyId:bucketIndex")
	cmd.Flags().VarP(f, "bucketId", "B", "distribution bucket ID in {familyId}:{bucketIndex} format, e.g. 0:1 (required)")
	requiredFlags(cmd, "bucketId")
	return f
}

func familyFlag(cmd *cobra.Command) *valueFlag[chain.FamilyID] {
	f := newFlag("", chain.FamilyID(0), chain.ParseFamilyID, "familyId")
	cmd.Flags().VarP(f, "familyId", "f", "distribution bucket family ID (required)")
	requiredFlags(cmd, "familyId")
	return f
}

// ---- distribution leader ----

// distLeadTx is a transaction the distribution lead signs.
func distLeadTx(m chain.Msg, action string, done func([]chain.Event) (string, map[string]any)) tx {
	return tx{role: distributionLeadRole, msg: m, action: action, done: done}
}

func newDistCancelInvitationCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	var worker *valueFlag[chain.WorkerID]
	return txCommand{
		use:     "cancel-invitation -B FAMILY:INDEX -w WORKER",
		short:   "Cancel a pending distribution bucket operator invitation. Requires the distribution lead",
		example: `  satchel distributor leader cancel-invitation -B 0:1 -w 5 -y`,
		flags: func(cmd *cobra.Command) {
			bucket, worker = distBucketFlag(cmd), workerFlag(cmd, "the invited distribution worker (required)", true)
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgCancelDistributionBucketInvitation{Bucket: bucket.value, Worker: worker.value}
			return distLeadTx(m, fmt.Sprintf("Cancel the invitation of distribution worker %d to distribution bucket %s", m.Worker, m.Bucket),
				doneLine(fmt.Sprintf("cancelled the invitation of distribution worker %d to distribution bucket %s", m.Worker, m.Bucket),
					map[string]any{"bucket": m.Bucket, "worker": m.Worker})), nil
		},
	}.command(app)
}

func newDistCreateBucketCmd(app *App) *cobra.Command {
	var family *valueFlag[chain.FamilyID]
	var accepting *valueFlag[bool]
	return txCommand{
		use:   "create-bucket -f FAMILY [-a yes|no]",
		short: "Create a distribution bucket in a family. Requires the distribution lead",
		long: `Create a distribution bucket in a family. Prints its ID {familyId}:{bucketIndex}:
e.g. "created distribution bucket 0:1" means index 1 in family 0. Indexes are
never reused within a family.`,
		example: `  satchel distributor leader create-bucket -f 0 -a yes -y`,
		flags: func(cmd *cobra.Command) {
			family = familyFlag(cmd)
			accepting = acceptingFlag(cmd, "no", "whether the bucket accepts new bags: yes or no")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgCreateDistributionBucket{Family: family.value, AcceptingNewBags: accepting.value}
			return distLeadTx(m, fmt.Sprintf("Create a distribution bucket in family %d, accepting new bags: %s", m.Family, yesNo(m.AcceptingNewBags)),
				func(ev []chain.Event) (string, map[string]any) {
					c, ok := chain.FindEvent[chain.DistributionBucketCreated](ev)
					if !ok {
						return fmt.Sprintf("created a distribution bucket in family %d (no DistributionBucketCreated event)", m.Family), nil
					}
					return fmt.Sprintf("created distribution bucket %s", c.Bucket),
						map[string]any{"bucket": c.Bucket, "family": c.Bucket.Family, "index": c.Bucket.Index}
				}), nil
		},
	}.command(app)
}

func newDistCreateFamilyCmd(app *App) *cobra.Command {
	return txCommand{
		use:     "create-bucket-family",
		short:   "Create a distribution bucket family. Requires the distribution lead",
		example: `  satchel distributor leader create-bucket-family -y`,
		build: func(*cobra.Command, []string) (tx, error) {
			return distLeadTx(chain.MsgCreateDistributionBucketFamily{}, "Create a distribution bucket family",
				func(ev []chain.Event) (string, map[string]any) {
					c, ok := chain.FindEvent[chain.DistributionFamilyCreated](ev)
					if !ok {
						return "created a distribution bucket family (no DistributionFamilyCreated event)", nil
					}
					return fmt.Sprintf("created distribution bucket family %d", c.Family), map[string]any{"family": c.Family}
				}), nil
		},
	}.command(app)
}

func newDistDeleteBucketCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	return txCommand{
		use:   "delete-bucket -B FAMILY:INDEX",
		short: "Delete a distribution bucket. The bucket must have no operators. Requires the distribution lead",
		long: `Delete a distribution bucket. It must distribute no bags and have no operators
and no pending invitations.`,
		example: `  satchel distributor leader delete-bucket -B 0:0 -y`,
		flags:   func(cmd *cobra.Command) { bucket = distBucketFlag(cmd) },
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgDeleteDistributionBucket{Bucket: bucket.value}
			return distLeadTx(m, fmt.Sprintf("Delete distribution bucket %s", m.Bucket),
				doneLine(fmt.Sprintf("deleted distribution bucket %s", m.Bucket), map[string]any{"bucket": m.Bucket})), nil
		},
	}.command(app)
}

func newDistDeleteFamilyCmd(app *App) *cobra.Command {
	var family *valueFlag[chain.FamilyID]
	return txCommand{
		use:   "delete-bucket-family -f FAMILY",
		short: "Delete a distribution bucket family. Requires the distribution lead",
		long: `Delete a distribution bucket family. It must have no buckets, and no dynamic bag
policy may name it.`,
		example: `  satchel distributor leader delete-bucket-family -f 2 -y`,
		flags:   func(cmd *cobra.Command) { family = familyFlag(cmd) },
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgDeleteDistributionBucketFamily{Family: family.value}
			return distLeadTx(m, fmt.Sprintf("Delete distribution bucket family %d", m.Family),
				doneLine(fmt.Sprintf("deleted distribution bucket family %d", m.Family), map[string]any{"family": m.Family})), nil
		},
	}.command(app)
}

func newDistInviteOperatorCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	var worker *valueFlag[chain.WorkerID]
	return txCommand{
		use:   "invite-bucket-operator -B FAMILY:INDEX -w WORKER",
		short: "Invite a distribution worker to operate a bucket. Requires the distribution lead",
		long: `Invite a distribution worker to operate a bucket. The bucket's operators and
invitations together may not exceed the per-bucket operator limit.`,
		example: `  satchel distributor leader invite-bucket-operator -B 0:1 -w 0 -y`,
		flags: func(cmd *cobra.Command) {
			bucket, worker = distBucketFlag(cmd), workerFlag(cmd, "distribution worker to invite as bucket operator (required)", true)
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgInviteDistributionBucketOperator{Bucket: bucket.value, Worker: worker.value}
			return distLeadTx(m, fmt.Sprintf("Invite distribution worker %d to operate distribution bucket %s", m.Worker, m.Bucket),
				doneLine(fmt.Sprintf("invited distribution worker %d to operate distribution bucket %s", m.Worker, m.Bucket),
					map[string]any{"bucket": m.Bucket, "worker": m.Worker})), nil
		},
	}.command(app)
}

func newDistRemoveOperatorCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	var worker *valueFlag[chain.WorkerID]
	return txCommand{
		use:     "remove-bucket-operator -B FAMILY:INDEX -w WORKER",
		short:   "Remove a distribution bucket operator. Requires the distribution lead",
		example: `  satchel distributor leader remove-bucket-operator -B 0:1 -w 0 -y`,
		flags: func(cmd *cobra.Command) {
			bucket, worker = distBucketFlag(cmd), workerFlag(cmd, "the operator (distribution worker) to remove (required)", true)
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgRemoveDistributionBucketOperator{Bucket: bucket.value, Worker: worker.value}
			return distLeadTx(m, fmt.Sprintf("Remove distribution worker %d from operating distribution bucket %s", m.Worker, m.Bucket),
				doneLine(fmt.Sprintf("removed distribution worker %d from distribution bucket %s", m.Worker, m.Bucket),
					map[string]any{"bucket": m.Bucket, "worker": m.Worker})), nil
		},
	}.command(app)
}

func newDistFamilyMetadataCmd(app *App) *cobra.Command {
	var family *valueFlag[chain.FamilyID]
	var input string
	return txCommand{
		use:   "set-bucket-family-metadata -f FAMILY -j FILE",
		short: "Set a distribution bucket family's metadata. Requires the distribution lead",
		long: `Set a family's metadata from a JSON file:

  {"region": "eu-north-1", "description": "Central and northern Europe",
   "latencyTestTargets": [], "areas": [{"continentCode": "EU"}]}

Each area sets exactly one of continentCode, countryCode, subdivisionCode.`,
		example: `  satchel distributor leader set-bucket-family-metadata -f 0 -j metadata.json -y`,
		flags: func(cmd *cobra.Command) {
			family = familyFlag(cmd)
			cmd.Flags().StringVarP(&input, "input", "j", "", "path to the JSON metadata file (required)")
			// -i was the file here, as it was in operator set-metadata.
			cmd.Flags().StringVarP(&input, "input-file", "i", "", "same as -j/--input")
			deprecateFlag(app, cmd, "input-file", "-i is -j/--input now, as in the set-metadata commands (-i will go)")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			if input == "" {
				return tx{}, fmt.Errorf("give the metadata file: -j FILE")
			}
			var md chain.FamilyMetadata
			if err := readJSONFile(input, &md); err != nil {
				return tx{}, err
			}
			m := chain.MsgSetDistributionFamilyMetadata{Family: family.value, Metadata: md}
			b, _ := json.Marshal(md)
			return distLeadTx(m, fmt.Sprintf("Set the metadata of distribution bucket family %d to %s", m.Family, b),
				doneLine(fmt.Sprintf("set the metadata of distribution bucket family %d", m.Family),
					map[string]any{"family": m.Family, "metadata": md})), nil
		},
	}.command(app)
}

func newDistBucketsPerBagLimitCmd(app *App) *cobra.Command {
	var limit *valueFlag[uint64]
	return txCommand{
		use:     "set-buckets-per-bag-limit -l LIMIT",
		short:   "Set the most distribution buckets a bag may be in. Requires the distribution lead",
		example: `  satchel distributor leader set-buckets-per-bag-limit -l 2 -y`,
		flags:   func(cmd *cobra.Command) { limit = limitFlag(cmd) },
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgSetDistributionBucketsPerBagLimit{Limit: limit.value}
			return distLeadTx(m, fmt.Sprintf("Set the distribution buckets per bag limit to %d", m.Limit),
				doneLine(fmt.Sprintf("distribution buckets per bag limit: %d", m.Limit), map[string]any{"limit": m.Limit})), nil
		},
	}.command(app)
}

func newDistUpdateBagCmd(app *App) *cobra.Command {
	var bag *valueFlag[chain.BagID]
	var family *valueFlag[chain.FamilyID]
	add := newListFlag(parseCount, "indexes")
	remove := newListFlag(parseCount, "indexes")
	return txCommand{
		use:   "update-bag -b BAG -f FAMILY [-a INDEXES] [-r INDEXES]",
		short: "Add a bag to and remove it from distribution buckets of a family. Requires the distribution lead",
		long: `Add a bag to buckets of one family (-a) and remove it from others (-r). Both take
bucket indexes within the family, repeated (-a 1 -a 2) or comma-separated
(-a 1,2): -f 0 -a 1 means bucket 0:1. Added buckets must accept new bags.`,
		example: `  satchel distributor leader update-bag -b dynamic:channel:111 -f 0 -a 1 -y
  satchel distributor leader update-bag -b dynamic:channel:111 -f 0 -r 1 -y
  satchel distributor leader update-bag -b dynamic:channel:111 -f 0 -a 1,3 -r 2`,
		flags: func(cmd *cobra.Command) {
			bag = bagFlag(cmd)
			family = familyFlag(cmd)
			cmd.Flags().VarP(add, "add", "a", "indexes (within the family) of buckets to add the bag to")
			cmd.Flags().VarP(remove, "remove", "r", "indexes (within the family) of buckets to remove the bag from")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgUpdateBagDistributionBuckets{Bag: bag.value, Family: family.value, Add: add.values, Remove: remove.values}
			if len(m.Add) == 0 && len(m.Remove) == 0 {
				return tx{}, fmt.Errorf("name bucket indexes of family %d to add (-a) or remove (-r), e.g. -a 1,2", m.Family)
			}
			ids := func(idx []uint64) []chain.DistributionBucketID {
				out := make([]chain.DistributionBucketID, len(idx))
				for i, x := range idx {
					out[i] = chain.DistributionBucketID{Family: m.Family, Index: x}
				}
				return out
			}
			added, removed := ids(m.Add), ids(m.Remove)
			return distLeadTx(m, fmt.Sprintf("Update the distribution buckets of bag %s: add %s, remove %s", m.Bag, joinIDs(added), joinIDs(removed)),
				doneLine(fmt.Sprintf("bag %s: added to distribution buckets %s; removed from %s", m.Bag, joinIDs(added), joinIDs(removed)),
					map[string]any{"bag": m.Bag, "added": added, "removed": removed})), nil
		},
	}.command(app)
}

func newDistUpdateBucketModeCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	mode := newFlag("", false, parseOnOff, "on|off")
	return txCommand{
		use:     "update-bucket-mode -B FAMILY:INDEX -d on|off",
		short:   `Update a distribution bucket's mode ("distributing"). Requires the distribution lead`,
		example: `  satchel distributor leader update-bucket-mode -B 1:1 -d on -y`,
		flags: func(cmd *cobra.Command) {
			bucket = distBucketFlag(cmd)
			cmd.Flags().VarP(mode, "mode", "d", `whether the bucket is "on" (distributing) or "off" (required)`)
			requiredFlags(cmd, "mode")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgUpdateDistributionBucketMode{Bucket: bucket.value, Distributing: mode.value}
			return distLeadTx(m, fmt.Sprintf("Set distribution bucket %s distributing: %s", m.Bucket, onOff(m.Distributing)),
				doneLine(fmt.Sprintf("distribution bucket %s distributing: %s", m.Bucket, onOff(m.Distributing)),
					map[string]any{"bucket": m.Bucket, "distributing": m.Distributing})), nil
		},
	}.command(app)
}

func newDistUpdateBucketStatusCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	var accepting *valueFlag[bool]
	return txCommand{
		use:     "update-bucket-status -B FAMILY:INDEX -a yes|no",
		short:   `Update a distribution bucket's status ("acceptingNewBags"). Requires the distribution lead`,
		example: `  satchel distributor leader update-bucket-status -B 1:1 -a no -y`,
		flags: func(cmd *cobra.Command) {
			bucket = distBucketFlag(cmd)
			accepting = acceptingFlag(cmd, "", "whether the bucket accepts new bags: yes or no (required)")
			requiredFlags(cmd, "acceptingBags")
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgUpdateDistributionBucketStatus{Bucket: bucket.value, AcceptingNewBags: accepting.value}
			return distLeadTx(m, fmt.Sprintf("Set distribution bucket %s accepting new bags: %s", m.Bucket, yesNo(m.AcceptingNewBags)),
				doneLine(fmt.Sprintf("distribution bucket %s accepting new bags: %s", m.Bucket, yesNo(m.AcceptingNewBags)),
					map[string]any{"bucket": m.Bucket, "acceptingNewBags": m.AcceptingNewBags})), nil
		},
	}.command(app)
}

// policyEntry is one {familyId}:{numberOfBuckets} of a dynamic bag policy.
type policyEntry struct {
	family chain.FamilyID
	n      uint64
}

func (e policyEntry) String() string { return fmt.Sprintf("%d:%d", e.family, e.n) }

func parsePolicyEntry(s string) (policyEntry, error) {
	f, n, ok := strings.Cut(strings.TrimSpace(s), ":")
	fam, err1 := chain.ParseFamilyID(f)
	num, err2 := parseCount(n)
	if !ok || err1 != nil || err2 != nil {
		return policyEntry{}, fmt.Errorf("policy entry %q: want {familyId}:{numberOfBuckets}, e.g. 1:5", s)
	}
	return policyEntry{family: fam, n: num}, nil
}

func newDistDynamicBagPolicyCmd(app *App) *cobra.Command {
	var typ *valueFlag[chain.DynamicBagType]
	policy := newListFlag(parsePolicyEntry, "familyId:numberOfBuckets")
	return txCommand{
		use:   "update-dynamic-bag-policy -t Member|Channel [-p FAMILY:N ...]",
		short: "Set how many buckets of each family a new dynamic bag is placed in. Requires the distribution lead",
		long: `Set, for new dynamic bags of a type, how many distribution buckets of each family
they are placed in. -p takes {familyId}:{numberOfBuckets} pairs, as several
words after one -p (-p 1:5 2:10 3:5), repeated (-p 1:5 -p 2:10) or
comma-separated (-p 1:5,2:10). Families not named get none; no -p at all
places new bags in no distribution bucket.

Placement picks each family's buckets pseudo-randomly among those accepting
new bags; when too few qualify, creating the bag fails and says so.`,
		example: `  satchel distributor leader update-dynamic-bag-policy -t Channel -p 1:5 2:10 3:5
  satchel distributor leader update-dynamic-bag-policy -t Member -p 0:1 -y`,
		args: cobra.ArbitraryArgs,
		flags: func(cmd *cobra.Command) {
			typ = dynamicBagTypeFlag(cmd)
			cmd.Flags().VarP(policy, "policy", "p", "{familyId}:{numberOfBuckets} pairs, e.g. -p 1:5 2:10 3:5")
		},
		build: func(cmd *cobra.Command, args []string) (tx, error) {
			// Words after -p are further entries, as in the seed's `-p 1:5 2:10 3:5`.
			if len(args) > 0 && !cmd.Flags().Changed("policy") {
				return tx{}, fmt.Errorf("unexpected arguments %q; policy entries follow -p, e.g. -p 1:5 2:10", args)
			}
			for _, a := range args {
				if err := policy.Set(a); err != nil {
					return tx{}, err
				}
			}
			fams := map[chain.FamilyID]uint64{}
			for _, e := range policy.values {
				if _, dup := fams[e.family]; dup {
					return tx{}, fmt.Errorf("family %d is listed twice in the policy; give each family once", e.family)
				}
				fams[e.family] = e.n
			}
			m := chain.MsgSetDistributionDynamicBagPolicy{BagType: typ.value, Families: fams}
			desc := describePolicy(fams)
			return distLeadTx(m, fmt.Sprintf("Place each new %s bag in %s", m.BagType, desc),
				doneLine(fmt.Sprintf("new %s bags are placed in %s", m.BagType, desc),
					map[string]any{"type": m.BagType, "families": fams})), nil
		},
	}.command(app)
}

// describePolicy says "5 buckets of family 1, 10 of family 2" or "no
// distribution buckets".
func describePolicy(fams map[chain.FamilyID]uint64) string {
	ids := make([]chain.FamilyID, 0, len(fams))
	for f, n := range fams {
		if n > 0 {
			ids = append(ids, f)
		}
	}
	if len(ids) == 0 {
		return "no distribution buckets"
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, f := range ids {
		parts[i] = fmt.Sprintf("%d of family %d", fams[f], f)
	}
	return "distribution buckets: " + strings.Join(parts, ", ")
}

// ---- distribution operator ----

func newDistAcceptInvitationCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	var worker *valueFlag[chain.WorkerID]
	return txCommand{
		use:     "accept-invitation -B FAMILY:INDEX -w WORKER",
		short:   "Accept a pending distribution bucket invitation. Requires the invited worker's key",
		example: `  satchel distributor operator accept-invitation -B 0:1 -w 0 -y`,
		flags: func(cmd *cobra.Command) {
			bucket, worker = distBucketFlag(cmd), workerFlag(cmd, "the invited operator (distribution worker) (required)", true)
		},
		build: func(*cobra.Command, []string) (tx, error) {
			m := chain.MsgAcceptDistributionBucketInvitation{Bucket: bucket.value, Worker: worker.value}
			return tx{role: accountRole, msg: m,
				action: fmt.Sprintf("Accept the invitation of distribution worker %d to operate distribution bucket %s", m.Worker, m.Bucket),
				done: doneLine(fmt.Sprintf("distribution worker %d now operates distribution bucket %s", m.Worker, m.Bucket),
					map[string]any{"bucket": m.Bucket, "worker": m.Worker})}, nil
		},
	}.command(app)
}

func newDistSetMetadataCmd(app *App) *cobra.Command {
	var bucket *valueFlag[chain.DistributionBucketID]
	var worker *valueFlag[chain.WorkerID]
	var input, endpoint string
	return txCommand{
		use:   "set-metadata -B FAMILY:INDEX -w WORKER [-j FILE] [-e URL]",
		short: "Set a distribution bucket operator's metadata. Requires the operator's key",
		long: `Publish the operator's node metadata from a JSON file (-j), the endpoint (-e),
or both (-e overrides the file's endpoint):

  {"endpoint": "https://example.com/distributor/",
   "location": {"countryCode": "SG", "city": "Singapore",
                "coordinates": {"latitude": 1, "longitude": 104}},
   "extra": "Welcome!"}`,
		example: `  satchel distributor operator set-metadata -B 0:1 -w 0 -j metadata.json
  satchel distributor operator set-metadata -B 0:1 -w 0 -e https://dist.example.com/distributor/ -y`,
		flags: func(cmd *cobra.Command) {
			bucket, worker = distBucketFlag(cmd), workerFlag(cmd, "the operator (distribution worker) (required)", true)
			cmd.Flags().StringVarP(&input, "input", "j", "", "path to a JSON metadata file")
			// -i was the file here but is the bucket ID in the storage
			// commands; it still works, with a warning, for old scripts.
			cmd.Flags().StringVarP(&input, "input-file", "i", "", "same as -j/--input")
			deprecateFlag(app, cmd, "input-file", "-i is -j/--input now, as in storage operator set-metadata, where -i is the bucket (-i will go)")
			cmd.Flags().StringVarP(&endpoint, "endpoint", "e", "", "root distribution node endpoint, e.g. https://example.com/distributor/")
		},
		build: func(cmd *cobra.Command, _ []string) (tx, error) {
			if input == "" && !cmd.Flags().Changed("endpoint") {
				return tx{}, fmt.Errorf("give the metadata: -j FILE, -e URL, or both")
			}
			var md chain.DistributionOperatorMetadata
			if input != "" {
				if err := readJSONFile(input, &md); err != nil {
					return tx{}, err
				}
			}
			if cmd.Flags().Changed("endpoint") {
				md.Endpoint = endpoint
			}
			m := chain.MsgSetDistributionOperatorMetadata{Bucket: bucket.value, Worker: worker.value, Metadata: md}
			b, _ := json.Marshal(md)
			return tx{role: accountRole, msg: m,
				action: fmt.Sprintf("Set the metadata of distribution worker %d for distribution bucket %s to %s", m.Worker, m.Bucket, b),
				done: doneLine(fmt.Sprintf("distribution worker %d set the metadata of distribution bucket %s", m.Worker, m.Bucket),
					map[string]any{"bucket": m.Bucket, "worker": m.Worker, "metadata": md})}, nil
		},
	}.command(app)
}
