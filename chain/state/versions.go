package state

// Versions of the state machine's rules: CometBFT's app version, named in a
// chain's genesis. A chain keeps the rules of the version its genesis
// names, so a newer binary replays an older chain's blocks to the same app
// hashes, and a node with it can join a chain that older nodes run.
const (
	// VersionMerkle keeps the state in an IAVL tree, so reads are proven.
	VersionMerkle uint64 = 2
	// VersionObjectIndex adds the object-ID index (QueryObjectByID): every
	// block that writes an object record also moves its entry, and the
	// genesis writes keyObjectsIndexed.
	VersionObjectIndex uint64 = 3
	// Version is the newest version, the one a new genesis gets.
	Version = VersionObjectIndex
)

// AppVersion returns the version of the rules the chain in m runs (0 while
// it has no genesis). Only what a version adds to the state tells them
// apart: a chain with keyObjectsIndexed runs VersionObjectIndex.
func (m *Machine) AppVersion() (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errClosed
	}
	r := m.committedReader()
	if _, ok, err := r.get(keyParams); err != nil || !ok {
		return 0, err
	}
	if _, ok, err := r.get(keyObjectsIndexed); err != nil || !ok {
		return VersionMerkle, err
	}
	return VersionObjectIndex, nil
}
