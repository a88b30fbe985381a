package state

import (
	"errors"
	"fmt"

	"github.com/satchel-net/satchel/chain"
)

// keyUpgrade holds the scheduled upgrade (a chain.UpgradePlan) until the
// block at its height runs it.
const keyUpgrade = "s/upgrade"

// upgradeAppVersion schedules an upgrade (see chain.MsgUpgradeAppVersion).
func (x *execCtx) upgradeAppVersion(m chain.MsgUpgradeAppVersion) error {
	if _, err := x.requireLead(chain.StorageGroup); err != nil {
		return err
	}
	cur, err := stateVersion(x.s.c)
	if err != nil {
		return err
	}
	// Only the state decides: whether this binary runs m.Version must not,
	// or a refusal committed today would be accepted by a later release
	// replaying the chain, and nodes of two releases would disagree on
	// the block. A version no binary of a node runs stops that node at the
	// upgrade height (runUpgrade), as it must.
	switch {
	case m.Version <= cur:
		return chain.Errorf(chain.ErrInvalid, "upgrade: the chain runs app version %d already; upgrade only to a newer version", cur)
	case m.Height <= x.block.Height:
		return chain.Errorf(chain.ErrInvalid, "upgrade: height %d is past: this is block %d and an upgrade runs at least %d blocks later; schedule it at height %d or later", m.Height, x.block.Height, chain.MinUpgradeDelay, x.block.Height+chain.MinUpgradeDelay)
	case m.Height < x.block.Height+chain.MinUpgradeDelay:
		return chain.Errorf(chain.ErrInvalid, "upgrade: height %d is too soon: this is block %d and an upgrade runs at least %d blocks later; schedule it at height %d or later", m.Height, x.block.Height, chain.MinUpgradeDelay, x.block.Height+chain.MinUpgradeDelay)
	}
	if err := replaceCutoff(x.s.c, cur, x.block.Height); err != nil {
		return err
	}
	if err := x.s.setJSON(keyUpgrade, chain.UpgradePlan{Version: m.Version, Height: m.Height}); err != nil {
		return err
	}
	x.emit(chain.AppVersionUpgradeScheduled{Version: m.Version, Height: m.Height})
	return nil
}

// cancelAppVersionUpgrade drops the scheduled upgrade (see
// chain.MsgCancelAppVersionUpgrade). versionGate has refused it below
// VersionUpgradeCancel already.
func (x *execCtx) cancelAppVersionUpgrade(m chain.MsgCancelAppVersionUpgrade) error {
	if _, err := x.requireLead(chain.StorageGroup); err != nil {
		return err
	}
	if err := upgradeCancelCutoff(m, x.block.Height); err != nil {
		return err
	}
	p, err := upgradePlan(x.s.c)
	if err != nil {
		return err
	}
	if p == nil {
		return chain.Errorf(chain.ErrInvalid, "cancel upgrade: no upgrade is scheduled; nothing to cancel")
	}
	if m.Version != p.Version || m.Height != p.Height {
		return chain.Errorf(chain.ErrInvalid, "cancel upgrade: app version %d at block %d is not the scheduled upgrade: the upgrade to app version %d is scheduled at block %d (a schedule replaces the one before); name --version %d --height %d to cancel it", m.Version, m.Height, p.Version, p.Height, p.Version, p.Height)
	}
	x.s.c.del(keyUpgrade)
	x.emit(chain.AppVersionUpgradeCancelled{Version: p.Version, Height: p.Height})
	return nil
}

// upgradeCancelCutoff refuses a cancel in block height of the upgrade
// scheduled at m.Height when the block is past the last one that may
// cancel it (chain.UpgradeCancelCutoff). It reads the message's height,
// not the state, so mempool admission judges it for the next block
// (upgradeRoom) as the block will.
func upgradeCancelCutoff(m chain.MsgCancelAppVersionUpgrade, height int64) error {
	last := chain.LastUpgradeCancelHeight(m.Height)
	if height <= last {
		return nil
	}
	return chain.Errorf(chain.ErrInvalid, "cancel upgrade: too late to cancel the upgrade at block %d: a cancel must be in block %d or earlier (%d blocks before the upgrade's, so every node sees the plan final a block ahead), and this is block %d; the upgrade runs as scheduled", m.Height, last, chain.UpgradeCancelCutoff+1, height)
}

// replaceCutoff refuses in block height, on a chain of version v, a
// schedule replacing one past its cancel cut-off: a replacement drops the
// plan as a cancel does (moving it later, or to another version), so from
// VersionUpgradeCancel on it has the same last block. Below it a
// replacement was the only way to hold an upgrade back and is taken as
// those releases took it, up to the upgrade's own block.
func replaceCutoff(r reader, v uint64, height int64) error {
	if v < VersionUpgradeCancel {
		return nil
	}
	p, err := upgradePlan(r)
	if err != nil || p == nil {
		return err
	}
	if last := chain.LastUpgradeCancelHeight(p.Height); height > last {
		return chain.Errorf(chain.ErrInvalid, "upgrade: too late to replace the upgrade to app version %d at block %d: a schedule replacing it must be in block %d or earlier, as a cancel must, and this is block %d; it runs as scheduled: schedule the next upgrade once it has run", p.Version, p.Height, last, height)
	}
	return nil
}

// upgradeRoom refuses at mempool admission, for block next, a cancel or
// a schedule that block would refuse as too late (upgradeCancelCutoff,
// replaceCutoff).
func upgradeRoom(r reader, msg chain.Msg, next int64) error {
	switch m := msg.(type) {
	case chain.MsgCancelAppVersionUpgrade:
		return upgradeCancelCutoff(m, next)
	case chain.MsgUpgradeAppVersion:
		v, err := stateVersion(r)
		if err != nil {
			return errInternal(err)
		}
		if err := replaceCutoff(r, v, next); err != nil {
			return errInternal(err)
		}
	}
	return nil
}

// upgradePlan returns the upgrade scheduled in the state r reads, if any.
func upgradePlan(r reader) (*chain.UpgradePlan, error) {
	var p chain.UpgradePlan
	ok, err := store{newCache(r)}.getJSON(keyUpgrade, &p)
	if err != nil || !ok {
		return nil, err
	}
	return &p, nil
}

// runUpgrade runs the upgrade scheduled for the end of block b, if any, in
// blk after the block's other changes (indexes included): the migration to
// each version up to the planned one. It returns the event and the version
// the chain moved to (0: none). A migration that fails — a bug, but the
// same on every node — leaves the chain at its version and drops the plan,
// logged; the caller stops on a storage fault.
func (m *Machine) runUpgrade(blk *cache, b chain.BlockInfo) (*chain.AppVersionUpgraded, error) {
	p, err := upgradePlan(blk)
	if err != nil || p == nil || p.Height > b.Height {
		return nil, err
	}
	from, err := stateVersion(blk)
	if err != nil {
		return nil, err
	}
	c := newCache(blk)
	c.del(keyUpgrade)
	err = func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("panic: %v", r)
			}
		}()
		for v := from + 1; v <= p.Version; v++ {
			if migrations[v] == nil {
				return errNoRelease{version: p.Version, height: b.Height}
			}
		}
		for v := from + 1; v <= p.Version; v++ {
			mig := migrations[v]
			if err := mig(c); err != nil {
				return fmt.Errorf("migrate to app version %d: %w", v, err)
			}
		}
		return nil
	}()
	var norel errNoRelease
	if errors.As(err, &norel) {
		return nil, err // this node cannot follow the chain: it stops
	}
	if err != nil {
		m.log.Error("app version upgrade failed; the chain stays at its version", "height", b.Height, "from", from, "to", p.Version, "err", err)
		blk.del(keyUpgrade)
		return nil, nil
	}
	c.mergeInto(blk)
	m.log.Info("app version upgraded", "height", b.Height, "from", from, "to", p.Version)
	return &chain.AppVersionUpgraded{From: from, To: p.Version, Height: b.Height}, nil
}

// errNoRelease stops a node whose binary does not run the version the
// chain moves to.
type errNoRelease struct {
	version uint64
	height  int64
}

func (e errNoRelease) Error() string {
	return fmt.Sprintf("the chain moves to app version %d at the end of block %d, and this satchel release runs app versions up to %d: run a release of version %d and start the node again", e.version, e.height, Version, e.version)
}

// UpgradedTo returns the app version the block last finalized moved the
// chain to (0: none). It implements chain.Upgrader.
func (m *Machine) UpgradedTo() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.pending == nil {
		return 0
	}
	return m.pending.upgradedTo
}
