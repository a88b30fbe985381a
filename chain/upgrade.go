package chain

import "context"

// App version upgrades. A chain runs the rules of one app version (see
// chain/state/versions.go), first the one its genesis names. A governed
// upgrade moves a running chain to a newer one the way CometBFT chains do
// it: the storage lead schedules it for a height with MsgUpgradeAppVersion;
// at the end of that block every node migrates its state to the new
// version inside the block (so the block's app hash covers the migration)
// and hands CometBFT the new version (a consensus params update), so the
// header of the next block names it and that block is the first run by
// the new rules. Every node runs the same migration at the same height, and
// one replaying the chain from genesis runs it again to the same hashes.

// MinUpgradeDelay is how many blocks after the block that schedules it an
// upgrade may run at the soonest: time for the operators to see it
// scheduled (satchel chain status) before every node switches rules.
const MinUpgradeDelay = 10

// UpgradeCancelCutoff is how many blocks before its height a scheduled
// upgrade stops being cancellable: from block Height−UpgradeCancelCutoff
// on, a cancel is refused, in CheckTx and in a block alike, so the last
// block that may carry one is LastUpgradeCancelHeight(Height).
//
// The upgrade runs after the transactions of its own block, so without a
// cut-off a cancel in block Height itself still dropped it: whether the
// chain moved was decided by which block a late cancel landed in, and
// the nodes learned it only as that block committed. With the cut-off,
// the plan is final once block Height−2 commits. Block Height−1 is then
// a whole block in which every node — the proposer preparing block
// Height, a node one block behind (the slack mempool admission allows),
// an operator reading satchel chain status, a node whose release cannot
// run the new version and will stop at the height — sees the same final
// plan; and a cancel sent in that last block's interval is refused at
// once, naming the cut-off, rather than admitted to fail or not depending
// on the block it lands in.
const UpgradeCancelCutoff = 1

// LastUpgradeCancelHeight returns the last block that may cancel the
// upgrade scheduled at the end of block height (see UpgradeCancelCutoff).
func LastUpgradeCancelHeight(height int64) int64 { return height - UpgradeCancelCutoff - 1 }

// MsgUpgradeAppVersion schedules the chain's move to app version Version at
// the end of block Height. Storage lead only: the storage lead is the
// chain's root authority — it changes the validator set (MsgSetValidator)
// and owns static:council, since Satchel has no council of its own — and
// an upgrade, like a validator change, binds every node of the network.
// Version must be one this binary runs and newer than the chain's; Height
// at least MinUpgradeDelay blocks after the block that includes the
// transaction. A later schedule replaces an earlier one that has not run
// (from app version 5, only up to the plan's LastUpgradeCancelHeight, as
// it drops the plan as a cancel does); MsgCancelAppVersionUpgrade (app
// version 5) drops it.
type MsgUpgradeAppVersion struct {
	Version uint64 `json:"version"`
	Height  int64  `json:"height"`
}

// Type implements Msg.
func (MsgUpgradeAppVersion) Type() string { return "upgrade_app_version" }

// ValidateBasic implements Msg.
func (m MsgUpgradeAppVersion) ValidateBasic() error {
	if m.Version == 0 {
		return invalid("upgrade: name the app version to move to (--version N)")
	}
	if m.Height <= 0 {
		return invalid("upgrade: height %d: name the block height at whose end the chain moves (--height H, at least %d blocks ahead)", m.Height, MinUpgradeDelay)
	}
	return nil
}

// MsgCancelAppVersionUpgrade drops the upgrade to Version scheduled for
// the end of block Height before it runs. Storage lead only, like the
// schedule; Version and Height must both be the scheduled upgrade's, so a
// cancel written for one schedule cannot drop another that replaced it —
// not even one at the same height: the lead's nonces may run out of
// order within the nonce window, so the order they were signed in does
// not protect a replacement. A block from Height−UpgradeCancelCutoff on
// refuses it (see UpgradeCancelCutoff). App version 5 added it: a chain below it
// refuses it as unknown, as the releases before did.
type MsgCancelAppVersionUpgrade struct {
	Version uint64 `json:"version"`
	Height  int64  `json:"height"`
}

// Type implements Msg.
func (MsgCancelAppVersionUpgrade) Type() string { return "cancel_app_version_upgrade" }

// ValidateBasic implements Msg.
func (m MsgCancelAppVersionUpgrade) ValidateBasic() error {
	if m.Version == 0 {
		return invalid("cancel upgrade: name the app version of the scheduled upgrade (--version N, as satchel chain status shows it)")
	}
	if m.Height <= 0 {
		return invalid("cancel upgrade: height %d: name the block height of the scheduled upgrade (--height H, as satchel chain status shows it)", m.Height)
	}
	return nil
}

// UpgradePlan is a scheduled app version upgrade: block Height ends with
// the migration to Version, and block Height+1 is the first by its rules.
type UpgradePlan struct {
	Version uint64 `json:"version"`
	Height  int64  `json:"height"`
}

// AppVersionInfo is the app version the chain runs and the upgrade
// scheduled, if any (the QueryAppVersion answer).
type AppVersionInfo struct {
	Version uint64       `json:"version"`
	Upgrade *UpgradePlan `json:"upgrade,omitempty"`
}

// QueryAppVersion: no data → AppVersionInfo.
const QueryAppVersion = "/app-version"

// AppVersion returns the app version the chain runs and the upgrade
// scheduled, if any.
func (c *Client) AppVersion(ctx context.Context) (AppVersionInfo, error) {
	return query[AppVersionInfo](ctx, c, QueryAppVersion, nil)
}

// AppVersionUpgradeScheduled: the storage lead scheduled an upgrade (or
// moved the one scheduled).
type AppVersionUpgradeScheduled struct {
	Version uint64 `json:"version"`
	Height  int64  `json:"height"`
}

// EventType implements EventPayload.
func (AppVersionUpgradeScheduled) EventType() string { return "AppVersionUpgradeScheduled" }

// AppVersionUpgradeCancelled: the storage lead dropped the upgrade to
// Version scheduled at Height (MsgCancelAppVersionUpgrade).
type AppVersionUpgradeCancelled struct {
	Version uint64 `json:"version"`
	Height  int64  `json:"height"`
}

// EventType implements EventPayload.
func (AppVersionUpgradeCancelled) EventType() string { return "AppVersionUpgradeCancelled" }

// AppVersionUpgraded: the block at Height ended with the migration from
// app version From to To (a block event, see EndBlocker); the next block
// runs To's rules.
type AppVersionUpgraded struct {
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Height int64  `json:"height"`
}

// EventType implements EventPayload.
func (AppVersionUpgraded) EventType() string { return "AppVersionUpgraded" }

// Upgrader is implemented by a Machine whose chain can move to a newer app
// version. After FinalizeBlock, the engine asks for the version the block
// moved the chain to and hands it to consensus (in CometBFT, the
// FinalizeBlock response's consensus params update, Version.App), so the
// next block's header names it.
type Upgrader interface {
	// UpgradedTo returns the app version the block last finalized moved
	// the chain to, 0 when it moved none.
	UpgradedTo() uint64
}
