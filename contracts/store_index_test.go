package contracts

import (
	"path/filepath"
	"testing"
	"time"
)

// TestStoreOpenUploads: a contract stored open is due at its deadline,
// across a restart of the store; moved later by ExtendOpen; kept to its
// end plus EndedRetention once settled, with its object; a renewal moves
// its due time; Delete leaves nothing due.
func TestStoreOpenUploads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "contracts")
	st, err := OpenStore(dir)
	must(t, err)
	c, _, _ := fixedContract(t)
	c.Object = 0
	c.SignAsProvider(seedKey(t, 2))
	c.SignAsRenter(seedKey(t, 1))
	session := [16]byte{9}
	deadline := time.Unix(1_700_000_000, 0)
	must(t, st.PutOpen(c, session, deadline))
	due := func(at time.Time) int {
		t.Helper()
		d, err := st.Due(at, 10)
		must(t, err)
		return len(d)
	}
	if due(deadline.Add(-time.Second)) != 0 || due(deadline) != 1 {
		t.Fatal("an open upload is not due at its deadline, or due before")
	}
	must(t, st.ExtendOpen(c.ID, c.Provider, deadline.Add(time.Hour)))
	if due(deadline.Add(time.Minute)) != 0 {
		t.Fatal("an open upload extended is due at its old deadline")
	}
	// A restart keeps the open upload and its deadline.
	must(t, st.Close())
	st, err = OpenStore(dir)
	must(t, err)
	defer st.Close()
	if at, open, err := st.Open(c.ID, c.Provider); err != nil || !open || !at.Equal(deadline.Add(time.Hour)) {
		t.Fatalf("after a restart: open %v until %v (%v)", open, at, err)
	}
	// Settled: due at its end plus retention, its object recorded.
	id, ok, err := st.Settle(session, 42)
	if err != nil || !ok || id != c.ID {
		t.Fatalf("settle: %v %v %v", id, ok, err)
	}
	if _, ok, _ := st.Settle(session, 42); ok {
		t.Fatal("a session settled twice")
	}
	if due(deadline.Add(2*time.Hour)) != 0 || due(c.End.Add(EndedRetention)) != 1 {
		t.Fatal("a settled contract is not due at its end plus retention alone")
	}
	if obj, ok, err := st.Bound(c.ID, c.Provider); err != nil || !ok || obj != 42 {
		t.Fatalf("bound object %d %v %v, want 42", obj, ok, err)
	}
	// A renewal moves it.
	c.End = c.End.Add(30 * day)
	c.SignAsProvider(seedKey(t, 2))
	c.SignAsRenter(seedKey(t, 1))
	must(t, st.Put(c))
	if due(c.End.Add(EndedRetention-30*day)) != 0 || due(c.End.Add(EndedRetention)) != 1 {
		t.Fatal("a renewed contract is due at its old end")
	}
	must(t, st.Delete(c.ID, c.Provider))
	if due(c.End.Add(EndedRetention)) != 0 {
		t.Fatal("a deleted contract is still due")
	}
}

// TestStoreIndexBuilt: a store written before it had the due index gets
// one when opened.
func TestStoreIndexBuilt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "contracts")
	st, err := OpenStore(dir)
	must(t, err)
	c, _, _ := fixedContract(t)
	c.SignAsProvider(seedKey(t, 2))
	c.SignAsRenter(seedKey(t, 1))
	must(t, st.Put(c))
	// As an older store: no index entry, no marker.
	must(t, st.db.Delete(dueKey(c.End.Add(EndedRetention), c.ID, c.Provider), nil))
	must(t, st.db.Delete([]byte(indexMarker), nil))
	must(t, st.Close())
	st, err = OpenStore(dir)
	must(t, err)
	defer st.Close()
	d, err := st.Due(c.End.Add(EndedRetention), 10)
	if err != nil || len(d) != 1 || d[0].ID != c.ID || d[0].Provider != c.Provider {
		t.Fatalf("due after reopening: %+v, %v; want the contract", d, err)
	}
}

// TestStoreOpenDeadlineRoundsUp: an open upload whose deadline falls
// within a second is not due, nor read back as open until, before that
// deadline: the store keeps whole seconds, rounded up.
func TestStoreOpenDeadlineRoundsUp(t *testing.T) {
	st, err := OpenStore(filepath.Join(t.TempDir(), "contracts"))
	must(t, err)
	defer st.Close()
	c, _, _ := fixedContract(t)
	c.Object = 0
	c.SignAsProvider(seedKey(t, 2))
	c.SignAsRenter(seedKey(t, 1))
	deadline := time.Unix(1_700_000_000, 600_000_000)
	must(t, st.PutOpen(c, [16]byte{7}, deadline))
	before := deadline.Add(-300 * time.Millisecond) // in the deadline's second
	if d, err := st.Due(before, 10); err != nil || len(d) != 0 {
		t.Fatalf("due %d contracts 300 ms before an open upload's deadline (%v), want none", len(d), err)
	}
	if at, open, err := st.Open(c.ID, c.Provider); err != nil || !open || at.Before(deadline) {
		t.Fatalf("open %v until %v (%v), want open until no earlier than %v", open, at, err, deadline)
	}
	must(t, st.ExtendOpen(c.ID, c.Provider, deadline.Add(time.Hour+100*time.Millisecond)))
	if d, err := st.Due(deadline.Add(time.Hour+50*time.Millisecond), 10); err != nil || len(d) != 0 {
		t.Fatalf("due %d contracts before an extended deadline (%v), want none", len(d), err)
	}
	if d, err := st.Due(deadline.Add(time.Hour+time.Second), 10); err != nil || len(d) != 1 {
		t.Fatalf("due %d contracts a second past the extended deadline (%v), want it", len(d), err)
	}
}
