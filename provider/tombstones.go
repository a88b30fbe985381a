package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/satchel-net/satchel/chain"
	"github.com/satchel-net/satchel/internal/fsutil"
)

// Deletion safety. The node removes an object the chain deleted only on
// evidence, and only after a grace period an operator can see and stop:
//
//   - evidence is the chain's deletion event for the object (ObjectsDeleted,
//     whatever its reason, "expired" included) confirmed by a read of the
//     object that answers not-found (events are not proven: delta.go), or
//     its absence confirmed twice — when first noticed and again when the grace ends — by a
//     DataObject query that answers not-found from an endpoint whose height
//     is at least the height this node has already followed the chain to.
//     An endpoint that is behind (lagging, reset) is not believed, and an
//     object list that merely omits an object is never evidence on its own;
//   - a tombstone records the evidence and when the object becomes due. It
//     is persisted (provider-tombstones.json in the state directory), so a
//     restart neither forgets it nor starts its clock again;
//   - until it is due the object stays and is served; an operator can keep
//     it indefinitely (Server.KeepObject, or POST
//     /api/v1/tombstones/{object}/keep on the status server) and release it
//     again; the chain listing the object again drops the tombstone.

// DefaultDeletionGrace is how long an object the chain deleted is kept
// before it is removed: long enough for an operator to notice a wrong
// deletion (a hostile or broken chain endpoint) on the status page or in
// the log and keep the data, short enough that deleted data does not
// linger. Disk is the only cost of a day's wait.
const DefaultDeletionGrace = 24 * time.Hour

// tombstoneFileName is the tombstone file in the state directory.
const tombstoneFileName = "provider-tombstones.json"

// Evidence a tombstone rests on.
const (
	// EvidenceDeleted: the chain's ObjectsDeleted event (owner or lead),
	// confirmed by a read of the object.
	EvidenceDeleted = "deleted"
	// EvidenceExpired: the chain's ObjectsDeleted event with reason
	// "expired" (a pending object never accepted).
	EvidenceExpired = "expired"
	// EvidenceAbsent: the chain answered not-found for the object at a
	// height this node had verified it reached.
	EvidenceAbsent = "absent"
)

// ErrNoTombstone means no object by that ID is waiting for removal.
var ErrNoTombstone = errors.New("provider: no tombstone for that object")

// Tombstone is an object the node will remove once its grace ends, unless
// an operator keeps it or the chain lists it again.
type Tombstone struct {
	// Object and Bag name the object.
	Object uint64      `json:"object"`
	Bag    chain.BagID `json:"bag"`
	// Evidence is why the node believes the chain deleted it:
	// EvidenceDeleted, EvidenceExpired or EvidenceAbsent.
	Evidence string `json:"evidence"`
	// Height is the chain height of the evidence.
	Height int64 `json:"height"`
	// Since is when the node recorded it; Due when the object may go.
	Since time.Time `json:"since"`
	Due   time.Time `json:"due"`
	// Kept is set while an operator keeps the object: it is not removed.
	Kept bool `json:"kept"`
}

// tombstones is the persisted set of tombstones, by object.
type tombstones struct {
	path string // "" keeps them in memory only

	mu sync.Mutex
	m  map[uint64]Tombstone
}

func newTombstones(dir string) *tombstones {
	t := &tombstones{m: map[uint64]Tombstone{}}
	if dir != "" {
		t.path = filepath.Join(dir, tombstoneFileName)
	}
	return t
}

func (t *tombstones) load() error {
	if t.path == "" {
		return nil
	}
	b, err := os.ReadFile(t.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("provider: read tombstones: %w", err)
	}
	var list []Tombstone
	if err := json.Unmarshal(b, &list); err != nil {
		// Refuse to start rather than forget what was kept: an operator's
		// keep would be lost and a deletion's clock restarted.
		return fmt.Errorf("provider: tombstone file %s is damaged (%v); fix or move it aside (the node then records deletions afresh, keeping every object for a new grace)", t.path, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, ts := range list {
		t.m[ts.Object] = ts
	}
	return nil
}

// saveLocked writes every tombstone durably: a synced temporary file
// renamed over the old one, then the directory synced.
func (t *tombstones) saveLocked() error {
	if t.path == "" {
		return nil
	}
	list := t.listLocked()
	b, err := json.MarshalIndent(list, "", "  ")
	if err != nil {
		return err
	}
	return fsutil.WriteFileAtomic(t.path, b, 0o600)
}

func (t *tombstones) listLocked() []Tombstone {
	out := make([]Tombstone, 0, len(t.m))
	for _, ts := range t.m {
		out = append(out, ts)
	}
	slices.SortFunc(out, func(a, b Tombstone) int {
		switch {
		case a.Object < b.Object:
			return -1
		case a.Object > b.Object:
			return 1
		}
		return 0
	})
	return out
}

func (t *tombstones) list() []Tombstone {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.listLocked()
}

func (t *tombstones) get(obj uint64) (Tombstone, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts, ok := t.m[obj]
	return ts, ok
}

// add records ts unless the object has a tombstone already (its first
// evidence and clock stand; an event upgrades an absence's evidence). It
// reports whether it recorded something new.
func (t *tombstones) add(ts Tombstone) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	old, ok := t.m[ts.Object]
	if ok && !(old.Evidence == EvidenceAbsent && ts.Evidence != EvidenceAbsent) {
		return false, nil
	}
	if ok {
		ts.Since, ts.Due, ts.Kept = old.Since, old.Due, old.Kept
	}
	t.m[ts.Object] = ts
	return !ok, t.saveLocked()
}

// remove drops the tombstone of obj and reports whether there was one.
func (t *tombstones) remove(obj uint64) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.m[obj]; !ok {
		return false, nil
	}
	delete(t.m, obj)
	return true, t.saveLocked()
}

// setKept keeps or releases obj.
func (t *tombstones) setKept(obj uint64, kept bool) (Tombstone, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	ts, ok := t.m[obj]
	if !ok {
		return ts, fmt.Errorf("%w: object %d is not waiting for removal", ErrNoTombstone, obj)
	}
	ts.Kept = kept
	t.m[obj] = ts
	return ts, t.saveLocked()
}

// Tombstones returns the objects waiting for removal, by object ID.
func (s *Server) Tombstones() []Tombstone { return s.tombs.list() }

// KeepObject stops the removal of an object the chain deleted: it stays,
// and is served, until ReleaseObject. It returns an error wrapping
// ErrNoTombstone when the object is not waiting for removal.
func (s *Server) KeepObject(obj chain.ObjectID) error {
	ts, err := s.tombs.setKept(uint64(obj), true)
	if err != nil {
		return err
	}
	s.log.Warn("operator keeps an object the chain deleted; it stays until released", "bag", ts.Bag, "object", ts.Object, "evidence", ts.Evidence)
	return nil
}

// ReleaseObject undoes KeepObject: the object is removed once its grace
// has ended and the chain's deletion is confirmed again.
func (s *Server) ReleaseObject(obj chain.ObjectID) error {
	ts, err := s.tombs.setKept(uint64(obj), false)
	if err != nil {
		return err
	}
	s.log.Warn("operator released a kept object; it will be removed once due", "bag", ts.Bag, "object", ts.Object, "due", ts.Due)
	s.recon.mark(ts.Bag)
	return nil
}

// holdsLocally reports whether the store has a manifest for obj.
func (s *Server) holdsLocally(obj uint64) bool {
	ok, err := s.bs.HasObject(obj)
	return err != nil || ok // an unreadable store counts as holding
}

func (s *Server) addTombstone(ts Tombstone) {
	now := time.Now()
	ts.Since, ts.Due = now, now.Add(s.cfg.deletionGrace)
	added, err := s.tombs.add(ts)
	if err != nil {
		s.log.Error("cannot persist a tombstone; the object is kept", "bag", ts.Bag, "object", ts.Object, "err", err)
	}
	if added {
		s.m.tombstones.Set(float64(len(s.tombs.list())))
		s.log.Warn("the chain deleted an object this node holds; removing it when the grace ends unless an operator keeps it",
			"bag", ts.Bag, "object", ts.Object, "evidence", ts.Evidence, "height", ts.Height, "due", ts.Due.Format(time.RFC3339),
			"keep", fmt.Sprintf("POST %s/%d/keep on the status server", TombstonesPath, ts.Object))
	}
}

// errUnconfirmed means the chain's absence of an object could not be
// confirmed: the endpoint is behind the node, or did not answer.
var errUnconfirmed = errors.New("provider: absence on chain not confirmed")

// confirmAbsent asks the chain for obj directly and returns the height at
// which it answered not-found. The endpoint must be at least at the height
// the node has followed the chain to: one behind (lagging, reset, another
// chain) is not believed.
func (s *Server) confirmAbsent(ctx context.Context, bag chain.BagID, obj uint64, atLeast int64) (int64, error) {
	info, err := s.c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("%w: read the chain's height: %v", errUnconfirmed, err)
	}
	verified := max(s.state.height(), atLeast)
	if info.Height < verified {
		return 0, fmt.Errorf("%w: the chain endpoint is at height %d, behind height %d this node has verified; it may be lagging or reset", errUnconfirmed, info.Height, verified)
	}
	if held, ok := s.heldBag(obj); ok && held != bag {
		// Object IDs are global: its absence from another bag says nothing
		// of the copy this node holds (an event naming the wrong bag).
		return 0, fmt.Errorf("%w: the node holds object %d under bag %s, not %s", errUnconfirmed, obj, held, bag)
	}
	_, err = s.c.DataObject(ctx, bag, chain.ObjectID(obj))
	switch {
	case err == nil:
		return 0, errPresent
	case errors.Is(err, chain.ErrNotFound):
		return info.Height, nil
	default:
		return 0, fmt.Errorf("%w: %v", errUnconfirmed, err)
	}
}

// heldBag returns the bag the store holds obj under, if it holds it.
func (s *Server) heldBag(obj uint64) (chain.BagID, bool) {
	m, ok, err := s.bs.Manifest(obj)
	if err != nil || !ok {
		return "", false
	}
	return chain.BagID(m.Bag), true
}

// errPresent means the chain holds the object after all.
var errPresent = errors.New("provider: the chain holds the object")

// reconcileAbsent handles a held object the chain's list of bag lacks: it
// records a tombstone on confirmed absence and removes the object once its
// tombstone is due, kept by no operator, and its absence confirmed again.
func (s *Server) reconcileAbsent(ctx context.Context, bag chain.BagID, obj uint64) {
	ts, ok := s.tombs.get(obj)
	if !ok {
		h, err := s.confirmAbsent(ctx, bag, obj, 0)
		switch {
		case errors.Is(err, errPresent):
			return // listed late: the race of a fresh object, or a short list
		case err != nil:
			s.m.deletionsRefused.Inc()
			s.log.Warn("the chain's object list lacks an object this node holds, but its deletion is not confirmed; keeping it", "bag", bag, "object", obj, "err", err)
			return
		}
		s.addTombstone(Tombstone{Object: obj, Bag: bag, Evidence: EvidenceAbsent, Height: h})
		ts, _ = s.tombs.get(obj)
	}
	if ts.Kept || time.Now().Before(ts.Due) {
		return
	}
	if _, err := s.confirmAbsent(ctx, bag, obj, ts.Height); err != nil {
		if errors.Is(err, errPresent) {
			s.dropTombstone(obj, "the chain lists the object again")
			return
		}
		s.m.deletionsRefused.Inc()
		s.log.Warn("an object's removal is due but the chain's deletion is not confirmed again; keeping it", "bag", bag, "object", obj, "err", err)
		return
	}
	reason := reasonDeleted
	if ts.Evidence == EvidenceExpired {
		reason = EvidenceExpired
	}
	s.removeObject(bag, obj, reason) // drops the tombstone once the object is gone
}

// dropTombstone forgets obj's tombstone, logging why when why is set.
func (s *Server) dropTombstone(obj uint64, why string) {
	ts, had := s.tombs.get(obj)
	if ok, err := s.tombs.remove(obj); err != nil {
		s.log.Warn("cannot persist dropping a tombstone", "object", obj, "err", err)
	} else if ok && why != "" {
		s.log.Warn("object is no longer waiting for removal", "bag", ts.Bag, "object", obj, "why", why)
	}
	if had {
		s.m.tombstones.Set(float64(len(s.tombs.list())))
	}
}

// logTombstones reports, at start, the objects still waiting for removal,
// so a restarted node's log says what it will delete and when.
func (s *Server) logTombstones() {
	list := s.tombs.list()
	s.m.tombstones.Set(float64(len(list)))
	for _, ts := range list {
		s.log.Warn("object deleted on chain is waiting for removal", "bag", ts.Bag, "object", ts.Object,
			"evidence", ts.Evidence, "due", ts.Due.Format(time.RFC3339), "kept", ts.Kept)
	}
}

// tombstoneRoutes serves the tombstone list and the keep and release
// actions on the status server; the actions are the operator's alone
// (operatorOnly).
func (s *Server) tombstoneRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+TombstonesPath, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Tombstones())
	})
	action := func(fn func(chain.ObjectID) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, err := strconv.ParseUint(r.PathValue("object"), 10, 64)
			if err != nil {
				writeJSON(w, http.StatusBadRequest, map[string]string{"error": "object must be a decimal object ID"})
				return
			}
			if err := fn(chain.ObjectID(id)); err != nil {
				code := http.StatusInternalServerError
				if errors.Is(err, ErrNoTombstone) {
					code = http.StatusNotFound
				}
				writeJSON(w, code, map[string]string{"error": err.Error()})
				return
			}
			ts, _ := s.tombs.get(id)
			writeJSON(w, http.StatusOK, ts)
		}
	}
	mux.Handle("POST "+TombstonesPath+"/{object}/keep", operatorOnly(action(s.KeepObject)))
	mux.Handle("POST "+TombstonesPath+"/{object}/release", operatorOnly(action(s.ReleaseObject)))
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
