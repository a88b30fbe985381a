// Package state is the data directory's deterministic state machine: it
// implements chain.Machine over goleveldb, with no dependency on consensus,
// so every rule is unit-tested by feeding it blocks directly.
//
//	m, err := state.New(dir)            // or state.NewMemory() in tests
//	hash, err := m.InitChain(genesis, time.Now())
//	results, hash, err := m.FinalizeBlock(chain.BlockInfo{Height: 1, Hash: h}, txs)
//	err = m.Commit()
//
// # Storage and the app hash
//
// Committed state lives in goleveldb under "s/" keys, with values in JSON
// (structs and sorted map keys, so encoding is deterministic). A block
// executes in a write buffer over the committed database; each transaction
// runs in a nested buffer that is merged only if the transaction succeeds,
// so a failing transaction changes nothing — except that a validly signed
// transaction with a usable nonce uses that nonce even when its message
// fails. Its bytes are public in the block; if the nonce stayed free,
// anyone could replay the transaction later, when the state lets it
// succeed (say, undoing a lead's later decision). Transactions that fail
// decoding, the signature, the chain ID, the message's stateless
// ValidateBasic or the nonce check can never succeed and change nothing at
// all.
// Commit writes the block's buffer, the height and the app hash in one
// synced batch; a restarted machine resumes from them (Info).
//
// The app hash chains blocks: app hash = sha256(previous app hash ||
// digest), where digest is sha256 over the block's writes in key order,
// each as uvarint(len(key)) key followed by 0x00 for a deletion or 0x01
// uvarint(len(value)) value. A block that writes nothing keeps the previous
// app hash. Genesis is hashed the same way from an empty previous hash.
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
