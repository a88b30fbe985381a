package state

import "github.com/satchel-net/satchel/chain"

// maxAwaitedWorkers bounds the provisional admission of new workers'
// transactions (awaitedWorker): a worker ID among the next
// maxAwaitedWorkers of its group, and as many accounts at once. A lead
// adds workers without a per-block quota, so the bound is this one rather
// than a block's worth: enough for the workers a lead hires together, few
// for an attacker guessing IDs.
//
// Best effort, first come first served: four free keys claiming the next
// worker IDs take every slot for their one block, and the real new
// worker's transaction is then refused (ErrWorkerNotFound) as it was
// before provisional admission — never worse than that. chain.Client's
// Submit sends such a transaction once more after the next block, when
// the node has the worker; the member path (awaited) has the same bound.
const maxAwaitedWorkers = 4

// awaitedWorker is awaited for a message of a new worker's role account
// whose standing failed with err, a worker not found: it is admitted
// provisionally when it names a worker the next block may add — an ID
// among the next maxAwaitedWorkers of its group — so a node one block
// behind the network admits a new worker's first acceptance of its
// bucket invitation (and its operator metadata) rather than drop it for
// good. At most maxAwaitedWorkers accounts at once, maxProvisionalPending
// transactions each; never proposed, and judged as any other once the
// block it waited for commits (see awaited).
func (p *mempool) awaitedWorker(x *execCtx, acct pendingAccount, msg chain.Msg, err error) (bool, error) {
	g, id, ok := namedWorker(msg)
	if !ok {
		return false, err
	}
	next, perr := x.s.getUint(keySeq + seqWorker + string(g))
	if perr != nil {
		return false, perr
	}
	if uint64(id) < next || uint64(id)-next >= maxAwaitedWorkers || !acct.asWorker && p.provisionalWorkers >= maxAwaitedWorkers {
		return false, err
	}
	return true, nil
}

// namedWorker returns the worker a message of a new worker's role account
// names: the worker accepting a bucket invitation or setting its
// operator metadata.
func namedWorker(msg chain.Msg) (chain.Group, chain.WorkerID, bool) {
	switch m := msg.(type) {
	case chain.MsgAcceptStorageBucketInvitation:
		return chain.StorageGroup, m.Worker, true
	case chain.MsgSetStorageOperatorMetadata:
		return chain.StorageGroup, m.Worker, true
	case chain.MsgAcceptDistributionBucketInvitation:
		return chain.DistributionGroup, m.Worker, true
	case chain.MsgSetDistributionOperatorMetadata:
		return chain.DistributionGroup, m.Worker, true
	}
	return "", 0, false
}
