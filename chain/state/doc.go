// Package state is the data directory's deterministic state machine: it
// implements chain.Machine over an IAVL tree in goleveldb, with no
// dependency on consensus, so every rule is unit-tested by feeding it
// blocks directly.
//
//	m, err := state.New(dir)            // or state.NewMemory() in tests
//	hash, err := m.InitChain(genesis, time.Now())
//	results, hash, err := m.FinalizeBlock(chain.BlockInfo{Height: 1, Hash: h}, txs)
//	err = m.Commit()
//
// # Storage and the app hash
//
// Committed state lives in an IAVL tree (github.com/cosmos/iavl) stored in
// goleveldb, under "s/" keys, with values in JSON (structs and sorted map
// keys, so encoding is deterministic). A block executes in a write buffer
// over the committed tree; each transaction runs in a nested buffer that is
// merged only if the transaction succeeds, so a failing transaction changes
// nothing — except that a validly signed transaction with a usable nonce
// uses that nonce even when its message fails. Its bytes are public in the
// block; if the nonce stayed free, anyone could replay the transaction
// later, when the state lets it succeed (say, undoing a lead's later
// decision). Transactions that fail decoding, the signature, the chain ID,
// the message's stateless ValidateBasic or the nonce check can never
// succeed and change nothing at all.
//
// At the end of a block the buffer's writes (with the index entries they
// imply, see indexes.go) go into the tree's working version, and the app
// hash is the tree's root hash: it commits to every key and value, so any
// read can be proven (ICS23 proofs; see Witness and VerifyWitness). Commit
// saves the version, synced; version h is the state after block h, and a
// restarted machine resumes from the latest saved version (Info). Genesis
// is written by InitChain into the working version and saved with block 1
// (a node stopped before block 1 is given InitChain again). A block that
// writes nothing keeps the previous app hash.
//
// IAVL was chosen over a sparse Merkle tree or a Merkle patricia trie
// because it is the maintained authenticated store of the CometBFT
// ecosystem: versioned (readers keep a committed version while the next
// block executes), ordered (range scans for paged queries, and ICS23
// neighbour proofs that show a page leaves nothing out), with existence and
// absence proofs in the ICS23 format, and a goleveldb backend. Its cost per
// block grows with the log of the state size.
//
// # Proven reads and pages
//
// Every query can be answered with its proof (chain.QueryProven): the
// machine records each key the query read and each range it scanned and
// returns them with proofs (a Witness); a verifier checks the proofs
// against the app hash signed by the validators and runs the same query
// over the proven reads alone (package chain/verify does this for clients).
// Lists are paged (chain/pages.go) over key ranges: a bag's objects, bags,
// a bucket's bags, and indexes derived at the end of each block — objects
// pending acceptance, objects by content ID, a worker's buckets — and the
// object-ID index answers which bag holds an object (QueryObjectByID).
//
// # Versions and upgrades
//
// A chain runs the rules of one app version (versions.go), first the one
// its genesis names. chain.MsgUpgradeAppVersion (storage lead) schedules a
// move to a newer one at a height; that block ends, after its other
// changes, with the migration to the new version in its own writes (to
// VersionObjectIndex: the object-ID index built from every object record),
// and UpgradedTo tells the engine, which hands the version to CometBFT for
// the next block's header (upgrade.go). From VersionUpgradeCancel,
// chain.MsgCancelAppVersionUpgrade (storage lead, naming the plan's
// version and height) drops the plan up to block Height−2
// (chain.UpgradeCancelCutoff), and a schedule replacing it has the same
// last block; from Height−1 on both are refused and the plan is final.
//
// # Validators
//
// The validator set is state (under "s/val/"): the genesis validators come
// from the network's genesis file, and the storage lead changes the set
// with MsgSetValidator, which the node turns into CometBFT validator
// updates. The set never becomes empty and no update names a validator
// CometBFT does not know, so an update cannot halt the chain.
//
// # Nonces
//
// Each nonce of an account is accepted once. A nonce above the account's
// highest used nonce is accepted (gaps are fine); so is an unused nonce up
// to NonceWindow (64) below it, tracked in a bitmap — the anti-replay
// window of IPsec. A client hands out increasing nonces, and up to 64
// submissions of one account may be in flight and commit in any order;
// a replayed transaction is always rejected. CheckTx checks the nonce
// against committed state; FinalizeBlock against the block so far.
//
// # Members and dynamic bags
//
// Creating a member always creates its bag dynamic:member:<id>, placed by
// the Member dynamic bag policy (zero buckets by default): every member
// then owns a bag for its assets, and the lead decides by policy whether
// member bags are stored. Creating a channel creates dynamic:channel:<id>,
// placed by the Channel policy. Static bags exist from genesis: the storage
// lead owns static:council and static:wg:storage, the distribution lead
// static:wg:distribution.
//
// # Placement
//
// A new dynamic bag goes into policy.StorageBuckets storage buckets chosen
// among those accepting new bags whose voucher is not full, and, for each
// family of the policy in ID order, into that many of the family's buckets
// accepting new bags. Choices are a partial Fisher–Yates shuffle driven by
// sha256(seed || domain || counter), where the seed hashes the block hash,
// the height and the bag ID: deterministic on every validator, different
// from bag to bag.
//
// When too few buckets qualify, the transaction creating the bag fails with
// chain.ErrTooFewBuckets, naming the policy, the family and the counts. A
// bag placed in fewer buckets than its policy asks would be silently
// under-replicated — for storage, a real risk of losing data — and nobody
// would notice until it mattered; failing tells the member and the lead at
// once what to fix (open or create buckets, or lower the policy).
//
// # Choices beyond the seed
//
//   - A bucket (storage or distribution) with bags, an operator or a
//     pending invitation cannot be deleted; a family with buckets, or named
//     by a dynamic bag policy, cannot be deleted.
//   - Adding a bag to a bucket with update-bag needs the bucket to accept
//     new bags (as in Joystream), and a storage bucket needs voucher room for
//     the bag's objects; the buckets-per-bag limit is checked when adding.
//   - Distribution buckets take up to Limits.DistributionOperatorsPerBucket
//     operators plus invitations (1 by default, the seed's "must not have
//     any operator"); a worker may operate many distribution buckets but one
//     storage bucket. A worker that operates or is invited anywhere cannot
//     be removed from its group.
//   - Registering objects in a bag that is in no storage bucket fails
//     (ErrNoStorageBuckets): nothing would store them. The storage lead may
//     delete any bag's objects (moderation). Accepting objects already
//     accepted is a no-op, so racing providers do not fail each other.
//   - A channel's owner may delete the channel once its bag is empty.
package state
