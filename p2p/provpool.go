package p2p

import "github.com/libp2p/go-libp2p/core/peer"

// recordPool indexes provider records of other peers by provider peer, and
// peers by their number of records, to find in constant time a record of the
// peer holding the most. The provider store keeps two: one for the records
// of priority peers, one for the rest. It is not safe for concurrent use.
type recordPool struct {
	// changed, when set, is told of every record added (+1) or removed
	// (-1): the store's metrics.
	changed func(delta int)
	byPeer  map[peer.ID]map[string]struct{} // record keys of each peer
	byCount map[int]map[peer.ID]struct{}    // peers by their record count (> 0)
	total   int                             // records in byPeer
	most    int                             // highest count in byCount, 0 if none
}

func newRecordPool() recordPool {
	return recordPool{
		byPeer:  make(map[peer.ID]map[string]struct{}),
		byCount: make(map[int]map[peer.ID]struct{}),
	}
}

// has reports whether record k of peer p is in the pool.
func (rp *recordPool) has(p peer.ID, k string) bool {
	_, ok := rp.byPeer[p][k]
	return ok
}

// count returns the number of records of p in the pool.
func (rp *recordPool) count(p peer.ID) int { return len(rp.byPeer[p]) }

// largest returns a record of a peer holding the most, if any.
func (rp *recordPool) largest() (peer.ID, string, bool) {
	for p := range rp.byCount[rp.most] {
		for k := range rp.byPeer[p] {
			return p, k, true
		}
	}
	return "", "", false
}

// add adds record k of peer p, which the pool does not hold.
func (rp *recordPool) add(p peer.ID, k string) {
	keys := rp.byPeer[p]
	if keys == nil {
		keys = make(map[string]struct{})
		rp.byPeer[p] = keys
	}
	keys[k] = struct{}{}
	rp.total++
	rp.move(p, len(keys)-1, len(keys))
	if rp.changed != nil {
		rp.changed(1)
	}
}

// remove removes record k of peer p, which the pool holds.
func (rp *recordPool) remove(p peer.ID, k string) {
	keys := rp.byPeer[p]
	delete(keys, k)
	rp.total--
	if len(keys) == 0 {
		delete(rp.byPeer, p)
	}
	rp.move(p, len(keys)+1, len(keys))
	if rp.changed != nil {
		rp.changed(-1)
	}
}

// move moves p from the peers with old records to those with n, which
// differs by one.
func (rp *recordPool) move(p peer.ID, old, n int) {
	if old > 0 {
		delete(rp.byCount[old], p)
		if len(rp.byCount[old]) == 0 {
			delete(rp.byCount, old)
			if rp.most == old {
				rp.most = n // n = old-1 when it shrank; grown, it is set below
			}
		}
	}
	if n > 0 {
		set := rp.byCount[n]
		if set == nil {
			set = make(map[peer.ID]struct{})
			rp.byCount[n] = set
		}
		set[p] = struct{}{}
		if n > rp.most {
			rp.most = n
		}
	}
}
