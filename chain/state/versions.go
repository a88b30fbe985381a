package state

import (
	"encoding/json"
	"fmt"

	"github.com/satchel-net/satchel/chain"
)

// Versions of the state machine's rules: CometBFT's app version, named in a
// chain's genesis. A chain keeps the rules of the version its genesis
// names, so a newer binary replays an older chain's blocks to the same app
// hashes, and a node with it can join a chain that older nodes run; a
// governed upgrade (chain.MsgUpgradeAppVersion, upgrade.go) moves it to a
// newer version at a height.
const (
	// VersionMerkle keeps the state in an IAVL tree, so reads are proven.
	VersionMerkle uint64 = 2
	// VersionObjectIndex adds the object-ID index (QueryObjectByID): every
	// block that writes an object record also moves its entry, and the
	// genesis (or the upgrade to it) writes keyObjectsIndexed.
	VersionObjectIndex uint64 = 3
	// VersionAdmission holds block proposals to mempool admission's
	// deterministic rules (CheckProposal, which ProcessProposal calls):
	// from it on, standing.go and the mempool's counts are consensus, and
	// changing them takes a new version. It also adds member creation by
	// invitation (invites.go): invite_member, set_member_invites,
	// set_open_members_per_block and set_initial_invites, refused as
	// unknown before it (versionGate), and a quota of its own for invited
	// registrations. Members that exist at the upgrade have no
	// invitations: the fields are omitted when empty, so the state needs
	// no change beyond the marker. The genesis, or the upgrade to it,
	// writes keyAdmission.
	VersionAdmission uint64 = 4
	// VersionUpgradeCancel adds cancel_app_version_upgrade (upgrade.go):
	// the storage lead drops a scheduled upgrade, refused as unknown
	// before it (versionGate) and in an older chain's proposals
	// (olderProposal). A cancel, or a schedule replacing a plan, is
	// refused from the plan's height−1 on (chain.UpgradeCancelCutoff;
	// added before any release shipped version 5, so no chain to replay
	// holds one). The state changes by its marker only; the genesis, or
	// the upgrade to it, writes keyUpgradeCancel.
	VersionUpgradeCancel uint64 = 5
	// Version is the newest version, the one a new genesis gets.
	Version = VersionUpgradeCancel
)

// AppVersion returns the version of the rules the chain in m runs (0 while
// it has no genesis). Only what a version adds to the state tells them
// apart: a chain with keyObjectsIndexed runs VersionObjectIndex, one with
// keyAdmission too VersionAdmission, one with keyUpgradeCancel too
// VersionUpgradeCancel.
func (m *Machine) AppVersion() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errClosed
	}
	return stateVersion(m.committedReader())
}

// stateVersion returns the version of the rules of the state r reads (0
// without a genesis).
func stateVersion(r reader) (uint64, error) {
	if _, ok, err := r.get(keyParams); err != nil || !ok {
		return 0, err
	}
	if _, ok, err := r.get(keyObjectsIndexed); err != nil || !ok {
		return VersionMerkle, err
	}
	if _, ok, err := r.get(keyAdmission); err != nil || !ok {
		return VersionObjectIndex, err
	}
	if _, ok, err := r.get(keyUpgradeCancel); err != nil || !ok {
		return VersionAdmission, err
	}
	return VersionUpgradeCancel, nil
}

// msgVersion returns the app version that added msg (0: every version
// has it).
func msgVersion(msg chain.Msg) uint64 {
	switch {
	case chain.InvitationMsg(msg):
		return VersionAdmission
	case isUpgradeCancel(msg):
		return VersionUpgradeCancel
	}
	return 0
}

func isUpgradeCancel(msg chain.Msg) bool {
	_, ok := msg.(chain.MsgCancelAppVersionUpgrade)
	return ok
}

// versionGate refuses a message the chain's version does not have yet
// with ErrUnknownMsg — what a release before that version answered, at
// CheckTx and in a block alike (without using the nonce, as a transaction
// that does not decode uses none) — so replaying an older chain's blocks
// gives the same results.
func versionGate(r reader, msg chain.Msg) error {
	need := msgVersion(msg)
	if need == 0 {
		return nil
	}
	v, err := stateVersion(r)
	if err != nil {
		return errInternal(err)
	}
	if v < need {
		return chain.Errorf(chain.ErrUnknownMsg, "transaction type %s needs app version %d, and this chain runs %d until the storage lead upgrades it", msg.Type(), need, v)
	}
	return nil
}

// migrations move a state to each version from the one before it; the
// upgrade to a version runs its migration inside the upgrade block. Every
// version above VersionMerkle has one.
var migrations = map[uint64]func(c *cache) error{
	VersionObjectIndex:   indexObjectIDs,
	VersionAdmission:     admitProposals,
	VersionUpgradeCancel: allowUpgradeCancel,
}

// allowUpgradeCancel is the migration to VersionUpgradeCancel: the state
// changes by its marker only; the blocks after it may cancel a scheduled
// upgrade.
func allowUpgradeCancel(c *cache) error {
	c.set(keyUpgradeCancel, []byte{1})
	return nil
}

// admitProposals is the migration to VersionAdmission: the state changes
// by its marker only; the blocks after it are held to admission and may
// register invited members (existing members keep 0 invitations).
func admitProposals(c *cache) error {
	c.set(keyAdmission, []byte{1})
	return nil
}

// indexObjectIDs is the migration to VersionObjectIndex: it writes the
// object-ID index entry of every object record of the state (the
// committed ones and those the block wrote) and keyObjectsIndexed, after
// which deriveIndexes keeps the entries of every block. It walks the
// records in key order one at a time (cache.iterate), so it holds only the
// index entries it writes, not the records: a state of a million objects
// is migrated without loading them all (see ARCHITECTURE, Governed
// upgrades).
func indexObjectIDs(c *cache) error {
	err := c.iterate(keyObject, func(key string, value []byte) error {
		var o chain.DataObject
		if err := json.Unmarshal(value, &o); err != nil {
			return fmt.Errorf("object record %q: %w", key, err)
		}
		c.set(objectBagKey(o.ID, o.Bag), nil)
		return nil
	})
	if err != nil {
		return err
	}
	c.set(keyObjectsIndexed, []byte{1})
	return nil
}
