package contracts

import (
	"errors"
	"time"
)

// This file holds the responder's prune: the stored contracts it deletes
// once they ended long enough ago, or were opened for an upload never
// bound.

// pruneLoop deletes this provider's contracts EndedRetention after they
// ended, at start and every PruneInterval.
func (r *Responder) pruneLoop() {
	t := time.NewTicker(PruneInterval)
	defer t.Stop()
	for {
		if n, err := r.prune(time.Now()); err != nil {
			r.log.Warn("pruning ended contracts", "deleted", n, "err", err)
		} else if n > 0 {
			r.log.Info("ended contracts pruned", "deleted", n)
		}
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pruneBatch bounds the contracts one prune reads from the index at once.
const pruneBatch = 1024

// prune deletes the stored contracts with this provider that are due at
// now — ended more than EndedRetention before, or open uploads whose grant
// lapsed unbound — and returns how many it deleted. It reads only the due
// entries of the store's index. A contract a request is changing is left
// for the next round.
func (r *Responder) prune(now time.Time) (int, error) {
	me, n := r.id.Key.Account(), 0
	skipped := make(map[ID]struct{})
	for {
		due, err := r.store.Due(now, pruneBatch+len(skipped))
		if err != nil {
			return n, err
		}
		progress := false
		for _, d := range due {
			if _, ok := skipped[d.ID]; ok || d.Provider != me {
				skipped[d.ID] = struct{}{}
				continue
			}
			deleted, err := r.pruneOne(d.ID, now)
			if err != nil {
				return n, err
			}
			if deleted {
				n++
				progress = true
			} else {
				skipped[d.ID] = struct{}{}
			}
		}
		if !progress || len(due) < pruneBatch+len(skipped) {
			return n, nil
		}
	}
}

// pruneOne deletes contract id if, read under its claim, it ended more than
// EndedRetention before now. A claimed or missing contract is left alone.
func (r *Responder) pruneOne(id ID, now time.Time) (bool, error) {
	release, err := r.claim(id)
	if err != nil {
		return false, nil
	}
	defer release()
	me := r.id.Key.Account()
	cur, err := r.store.Get(id, me)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !r.pruneDue(cur, now) {
		return false, nil
	}
	return true, r.store.Delete(id, me)
}

// pruneDue reports whether c may be deleted at now: ended EndedRetention
// before, or an open upload past its deadline whose grant is not live
// (its deadline lies past the grant's end, so this is only a guard).
func (r *Responder) pruneDue(c *Contract, now time.Time) bool {
	if now.After(c.End.Add(EndedRetention)) {
		return true
	}
	deadline, open, err := r.store.Open(c.ID, c.Provider)
	// A second of grace: a store written before deadlines were rounded up
	// may hold one truncated to its second.
	if err != nil || !open || !now.After(deadline.Add(time.Second)) {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.consigned[c.ID]
	g, live := r.grants[s]
	return !ok || !live || now.After(g.Expires)
}
