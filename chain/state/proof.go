package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/cosmos/iavl"
	ics23 "github.com/cosmos/ics23/go"

	"github.com/satchel-net/satchel/chain"
)

// A proven read. A query runs over a reader; answered with proofs
// (chain.QueryProven), the machine records every key the query got and
// every range it scanned, and returns them with ICS23 proofs against the
// root of the IAVL tree at the committed height: a Witness. A verifier that
// trusts the app hash of that height (from a header the validators signed)
// checks every proof and runs the same query over the proven reads alone
// (VerifyWitness): it trusts the validators, not the node that answered.

// ErrBadProof is returned by VerifyWitness when a witness does not prove
// its reads against the trusted app hash: the node that sent it lied or is
// broken.
var ErrBadProof = errors.New("proof does not match the validator-signed app hash")

// Witness is the answer to a proven query: the reads of Path at Height with
// their proofs. Verify it with VerifyWitness against the app hash of the
// state at Height, which the header of block Height+1 carries.
type Witness struct {
	Path   string       `json:"path"`
	Data   []byte       `json:"data,omitempty"`
	Height int64        `json:"height"`
	Gets   []ProvenGet  `json:"gets,omitempty"`
	Scans  []ProvenScan `json:"scans,omitempty"`
}

// Values in proven reads are as stored in the tree: an empty value is
// stored as one zero byte.

// ProvenGet is one key read: its value (when Found) and an ICS23
// CommitmentProof (protobuf) of its existence or absence.
type ProvenGet struct {
	Key   []byte `json:"key"`
	Found bool   `json:"found"`
	Value []byte `json:"value,omitempty"`
	Proof []byte `json:"proof"`
}

// ProvenScan is one range read: up to Limit (0: all) entries under Prefix
// with keys above After, and whether More follow.
//
// The entries are proven together, as one range: Paths[i] is entry i's
// ICS23 ExistenceProof (protobuf, its key and value left out) cut where its
// path joins entry i-1's, and Shared[i] is how many inner ops from the top
// of entry i-1's full path complete it (0 for the first entry). Neighbours
// in the tree share all but a few ops, so a page of n entries carries about
// 2n inner ops instead of n times the tree's depth, and its verification
// hashes each of them once. Consecutive entries are neighbours in the tree.
//
// Start is a CommitmentProof of the absence of the scan's first key
// (Prefix, or After+0x00) when it is not the first entry, whose right
// neighbour is the first entry (or lies outside Prefix). Next, when More is
// false and the page is not empty, is an ExistenceProof of the key right
// after the last entry (outside Prefix), absent when the last entry is the
// last key of the tree.
type ProvenScan struct {
	Prefix []byte   `json:"prefix"`
	After  []byte   `json:"after,omitempty"`
	Limit  int      `json:"limit,omitempty"`
	Keys   [][]byte `json:"keys,omitempty"`
	Values [][]byte `json:"values,omitempty"`
	More   bool     `json:"more,omitempty"`
	Paths  [][]byte `json:"paths,omitempty"`
	Shared []int    `json:"shared,omitempty"`
	Start  []byte   `json:"start,omitempty"`
	Next   []byte   `json:"next,omitempty"`
}

// MaxProvenEntries bounds the entries one proven query may read: each
// carries a proof of about 1.5 KiB. Lists above it are read page by page.
const MaxProvenEntries = 10_000

// scanID names a range read.
type scanID struct {
	prefix, after string
	limit         int
}

// scanResult is what a recorded range read returned (raw values).
type scanResult struct {
	entries []kv
	more    bool
}

// recorder passes reads to a committed reader and records them. Its reader
// returns values as stored (raw): values are decoded on the way out, and
// the witness proves the stored ones.
type recorder struct {
	r     reader
	gets  map[string]bool
	scans map[scanID]*scanResult
	order []scanID
	keys  []string
	// entries counts what scans returned, for MaxProvenEntries.
	entries int
}

func newRecorder(r reader) *recorder {
	return &recorder{r: r, gets: map[string]bool{}, scans: map[scanID]*scanResult{}}
}

func (c *recorder) get(key string) ([]byte, bool, error) {
	if !c.gets[key] {
		c.gets[key] = true
		c.keys = append(c.keys, key)
	}
	v, ok, err := c.r.get(key)
	if ok {
		v = decodeValue(v)
	}
	return v, ok, err
}

// decodedEntries returns entries read raw with their values decoded,
// sharing the stored bytes.
func decodedEntries(es []kv) []kv {
	out := make([]kv, len(es))
	for i, e := range es {
		out[i] = e
		if bytes.Equal(e.value, emptyValue) {
			out[i].value = []byte{}
		}
	}
	return out
}

func (c *recorder) scan(prefix string) ([]kv, error) {
	out, _, err := c.scanPage(prefix, "", 0)
	return out, err
}

func (c *recorder) scanPage(prefix, after string, limit int) ([]kv, bool, error) {
	id := scanID{prefix, after, limit}
	if res, ok := c.scans[id]; ok {
		return decodedEntries(res.entries), res.more, nil
	}
	out, more, err := c.r.scanPage(prefix, after, limit)
	if err != nil {
		return nil, false, err
	}
	c.scans[id] = &scanResult{entries: out, more: more}
	c.order = append(c.order, id)
	c.entries += len(out)
	out = decodedEntries(out)
	if err == nil && c.entries > MaxProvenEntries {
		err = chain.Errorf(chain.ErrInvalid, "the query reads more than %d entries, too many to prove at once; use the paged query", MaxProvenEntries)
	}
	return out, more, err
}

// queryProven answers chain.QueryProven: it runs the query at the committed
// height and returns its Witness (also when the query fails: the proven
// reads show why, e.g. that a bag does not exist).
func (m *Machine) queryProven(data []byte) ([]byte, error) {
	var req chain.ProvenQuery
	if err := json.Unmarshal(data, &req); err != nil {
		return nil, chain.Errorf(chain.ErrInvalid, "proven query: bad argument: %v", err)
	}
	if req.Path == chain.QueryProven {
		return nil, chain.Errorf(chain.ErrInvalid, "proven query of a proven query")
	}
	m.mu.Lock()
	t, height, hash := m.committed, m.height, m.appHash
	// The app hash of height h is signed in the header of block h+1, which
	// exists once block h+1 is committed: answer at the height before the
	// last, whose header is already signed, unless the caller needs newer.
	if m.previous != nil && req.MinHeight < height {
		t, height, hash = m.previous, height-1, m.previous.Hash()
	}
	m.mu.Unlock()
	switch {
	case t == nil:
		return nil, chain.Errorf(chain.ErrInternal, "no block is committed yet; proofs start after block 1")
	case req.MinHeight > height:
		return nil, chain.Errorf(chain.ErrInvalid, "proven query needs height %d, this node has committed %d; wait for the block", req.MinHeight, height)
	}
	rec := newRecorder(treeReader{t: t, raw: true})
	err := recordReads(rec, height, hash, req.Path, req.Data)
	switch chain.CodeOf(err) {
	case chain.CodeInternal:
		return nil, errInternal(err)
	case chain.CodeUnknownQuery:
		// Bare, not a witness of no reads: a newer verifier that knows
		// the path would take an empty witness for a lie, where this is
		// only an older node (chain/verify passes the code through).
		return nil, err
	}
	if rec.entries > MaxProvenEntries {
		return nil, chain.Errorf(chain.ErrInvalid, "proven %s reads more than %d entries; use the paged query", req.Path, MaxProvenEntries)
	}
	w, err := witness(t, rec, req, height)
	if err != nil {
		return nil, errInternal(err)
	}
	b, err := json.Marshal(w)
	if err != nil {
		return nil, errInternal(err)
	}
	return b, nil
}

// witness proves the recorder's reads in t.
func witness(t *iavl.ImmutableTree, rec *recorder, req chain.ProvenQuery, height int64) (Witness, error) {
	w := Witness{Path: req.Path, Data: req.Data, Height: height}
	sort.Strings(rec.keys)
	for _, k := range rec.keys {
		g, err := proveGet(t, k)
		if err != nil {
			return w, err
		}
		w.Gets = append(w.Gets, g)
	}
	for _, id := range rec.order {
		s, err := proveScan(t, id, rec.scans[id])
		if err != nil {
			return w, err
		}
		w.Scans = append(w.Scans, s)
	}
	return w, nil
}

func proveGet(t *iavl.ImmutableTree, key string) (ProvenGet, error) {
	g := ProvenGet{Key: []byte(key)}
	v, ok, err := treeReader{t: t, raw: true}.get(key)
	if err != nil {
		return g, err
	}
	var p *ics23.CommitmentProof
	if ok {
		g.Found, g.Value = true, v
		p, err = t.GetMembershipProof(g.Key)
	} else {
		p, err = t.GetNonMembershipProof(g.Key)
	}
	if err != nil {
		return g, fmt.Errorf("prove key %q: %w", key, err)
	}
	g.Proof, err = p.Marshal()
	return g, err
}

func proveScan(t *iavl.ImmutableTree, id scanID, res *scanResult) (ProvenScan, error) {
	s := ProvenScan{Prefix: []byte(id.prefix), Limit: id.limit, More: res.more}
	if id.after != "" {
		s.After = []byte(id.after)
	}
	es := res.entries
	var prev []*ics23.InnerOp
	for i, e := range es {
		p, err := t.GetMembershipProof([]byte(e.key))
		if err != nil {
			return s, fmt.Errorf("prove key %q: %w", e.key, err)
		}
		ex := p.GetExist()
		shared := 0
		if i > 0 {
			shared = sharedTop(prev, ex.Path)
		}
		prev = ex.Path
		cut := ics23.ExistenceProof{Leaf: ex.Leaf, Path: ex.Path[:len(ex.Path)-shared]}
		b, err := cut.Marshal()
		if err != nil {
			return s, err
		}
		s.Keys, s.Values = append(s.Keys, []byte(e.key)), append(s.Values, e.value)
		s.Paths, s.Shared = append(s.Paths, b), append(s.Shared, shared)
	}
	start := scanStart(id)
	if len(es) == 0 || es[0].key != start {
		p, err := t.GetNonMembershipProof([]byte(start))
		if err != nil {
			return s, fmt.Errorf("prove the start of scan %q: %w", id.prefix, err)
		}
		if s.Start, err = p.Marshal(); err != nil {
			return s, err
		}
	}
	if !res.more && len(es) > 0 {
		next, err := nextKey(t, es[len(es)-1].key)
		if err != nil || next == nil {
			return s, err
		}
		p, err := t.GetMembershipProof(next)
		if err != nil {
			return s, fmt.Errorf("prove the end of scan %q: %w", id.prefix, err)
		}
		if s.Next, err = p.GetExist().Marshal(); err != nil {
			return s, err
		}
	}
	return s, nil
}

// sharedTop counts the inner ops at the top of path b equal to those at
// the top of path a.
func sharedTop(a, b []*ics23.InnerOp) int {
	n := 0
	for n < len(a) && n < len(b) {
		x, y := a[len(a)-1-n], b[len(b)-1-n]
		if x.Hash != y.Hash || !bytes.Equal(x.Prefix, y.Prefix) || !bytes.Equal(x.Suffix, y.Suffix) {
			break
		}
		n++
	}
	return n
}

// scanStart is the first key a scan may return.
func scanStart(id scanID) string {
	if id.after != "" {
		return id.after + "\x00"
	}
	return id.prefix
}

// nextKey returns the first key of t above key, or nil.
func nextKey(t *iavl.ImmutableTree, key string) ([]byte, error) {
	it, err := t.Iterator(append([]byte(key), 0), nil, true)
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if !it.Valid() {
		return nil, it.Error()
	}
	return bytes.Clone(it.Key()), nil
}

// VerifyWitness checks every proof of w against appHash, the app hash of
// the state at w.Height as signed by the validators (in the header of block
// w.Height+1), then answers w's query from the proven reads alone and
// returns the answer's JSON, as Machine.Query would. A query that failed
// (say, an unknown bag) returns its *chain.Error. A proof that does not
// hold, or a read the query needs that w lacks, returns an error matching
// ErrBadProof.
func VerifyWitness(w Witness, appHash []byte) ([]byte, error) {
	r := &witnessReader{gets: map[string]ProvenGet{}, scans: map[scanID]ProvenScan{}}
	for _, g := range w.Gets {
		if err := verifyGet(g, appHash); err != nil {
			return nil, fmt.Errorf("%w: key %q: %v", ErrBadProof, g.Key, err)
		}
		r.gets[string(g.Key)] = g
	}
	for _, s := range w.Scans {
		if err := verifyScan(s, appHash); err != nil {
			return nil, fmt.Errorf("%w: range %q after %q: %v", ErrBadProof, s.Prefix, s.After, err)
		}
		r.scans[scanID{string(s.Prefix), string(s.After), s.Limit}] = s
	}
	v, err := query(r, w.Height, appHash, w.Path, w.Data)
	if r.missing != "" {
		return nil, fmt.Errorf("%w: the answer leaves out %s", ErrBadProof, r.missing)
	}
	if err != nil {
		return nil, errInternal(err)
	}
	return json.Marshal(v)
}

func verifyGet(g ProvenGet, root []byte) error {
	var p ics23.CommitmentProof
	if err := p.Unmarshal(g.Proof); err != nil {
		return err
	}
	if g.Found {
		if !ics23.VerifyMembership(ics23.IavlSpec, root, &p, g.Key, g.Value) {
			return errors.New("membership proof fails")
		}
		return nil
	}
	if !ics23.VerifyNonMembership(ics23.IavlSpec, root, &p, g.Key) {
		return errors.New("absence proof fails")
	}
	return nil
}

func verifyScan(s ProvenScan, root []byte) error {
	if len(s.Keys) != len(s.Values) || len(s.Keys) != len(s.Paths) || len(s.Keys) != len(s.Shared) {
		return errors.New("entries and proofs do not match")
	}
	if s.Limit > 0 && len(s.Keys) > s.Limit {
		return errors.New("more entries than the limit")
	}
	if s.More && (s.Limit == 0 || len(s.Keys) < s.Limit) {
		return errors.New("claims more entries without a full page")
	}
	spec := ics23.IavlSpec
	var prev provenPath
	for i, k := range s.Keys {
		if !bytes.HasPrefix(k, s.Prefix) || (len(s.After) > 0 && bytes.Compare(k, s.After) <= 0) {
			return fmt.Errorf("entry %q is outside the range", k)
		}
		cur, err := verifyEntry(s, i, prev, root)
		if err != nil {
			return fmt.Errorf("entry %q: %v", k, err)
		}
		if i > 0 && !ics23.IsLeftNeighbor(spec.InnerSpec, prev.path, cur.path) {
			return fmt.Errorf("entries %q and %q are not neighbours: the answer leaves keys out", s.Keys[i-1], k)
		}
		prev = cur
	}
	if err := verifyScanStart(s, root); err != nil {
		return err
	}
	if s.More || len(s.Keys) == 0 {
		return nil
	}
	if len(s.Next) == 0 {
		if !ics23.IsRightMost(spec.InnerSpec, prev.path) {
			return errors.New("the range ends early: keys after the last entry are left out")
		}
		return nil
	}
	var next ics23.ExistenceProof
	if err := next.Unmarshal(s.Next); err != nil {
		return err
	}
	if bytes.HasPrefix(next.Key, s.Prefix) {
		return fmt.Errorf("key %q after the last entry is inside the range", next.Key)
	}
	if err := next.Verify(spec, root, next.Key, next.Value); err != nil {
		return fmt.Errorf("key after the range: %v", err)
	}
	if !ics23.IsLeftNeighbor(spec.InnerSpec, prev.path, next.Path) {
		return errors.New("the range ends early: keys after the last entry are left out")
	}
	return nil
}

// provenPath is an entry's verified path from its leaf to the root, and
// the hash each of its inner ops was applied to.
type provenPath struct {
	path   []*ics23.InnerOp
	inputs [][]byte
}

// verifyEntry checks entry i of s: its path, completed by the top of the
// previous entry's verified path, must hash its key and value to the root.
// The completed part is not hashed again: the entry's own ops must hash to
// the very value the previous entry fed into the first shared op, from
// which the same ops reach the root.
func verifyEntry(s ProvenScan, i int, prev provenPath, root []byte) (provenPath, error) {
	var p ics23.ExistenceProof
	if err := p.Unmarshal(s.Paths[i]); err != nil {
		return provenPath{}, err
	}
	shared := s.Shared[i]
	if shared < 0 || shared > len(prev.path) {
		return provenPath{}, fmt.Errorf("shares %d inner ops with a path of %d", shared, len(prev.path))
	}
	own := len(p.Path)
	at := len(prev.path) - shared
	p.Key, p.Value = s.Keys[i], s.Values[i]
	p.Path = append(p.Path[:own:own], prev.path[at:]...)
	if err := p.CheckAgainstSpec(ics23.IavlSpec); err != nil {
		return provenPath{}, err
	}
	h, err := p.Leaf.Apply(p.Key, p.Value)
	if err != nil {
		return provenPath{}, err
	}
	inputs := make([][]byte, len(p.Path))
	for j, op := range p.Path[:own] {
		inputs[j] = h
		if h, err = op.Apply(h); err != nil {
			return provenPath{}, err
		}
	}
	switch {
	case shared > 0:
		if !bytes.Equal(h, prev.inputs[at]) {
			return provenPath{}, errors.New("its proof does not join the previous entry's")
		}
		copy(inputs[own:], prev.inputs[at:])
	case !bytes.Equal(h, root):
		return provenPath{}, errors.New("calculated root doesn't match provided root")
	}
	return provenPath{path: p.Path, inputs: inputs}, nil
}

// verifyScanStart checks that no key lies between the scan's start and its
// first entry (or, for an empty scan, under the prefix at all).
func verifyScanStart(s ProvenScan, root []byte) error {
	start := []byte(scanStart(scanID{string(s.Prefix), string(s.After), s.Limit}))
	if len(s.Keys) > 0 && bytes.Equal(s.Keys[0], start) {
		return nil
	}
	var p ics23.CommitmentProof
	if err := p.Unmarshal(s.Start); err != nil {
		return err
	}
	ne := p.GetNonexist()
	if ne == nil || !bytes.Equal(ne.Key, start) || !ics23.VerifyNonMembership(ics23.IavlSpec, root, &p, start) {
		return errors.New("no proof that the range starts where it says")
	}
	switch {
	case len(s.Keys) > 0:
		if ne.Right == nil || !bytes.Equal(ne.Right.Key, s.Keys[0]) {
			return errors.New("the range starts late: keys before the first entry are left out")
		}
	case ne.Right != nil && bytes.HasPrefix(ne.Right.Key, s.Prefix):
		return fmt.Errorf("the range is said to be empty, but key %q is in it", ne.Right.Key)
	}
	return nil
}

// witnessReader answers reads from a verified witness only.
type witnessReader struct {
	gets    map[string]ProvenGet
	scans   map[scanID]ProvenScan
	missing string
}

func (r *witnessReader) get(key string) ([]byte, bool, error) {
	g, ok := r.gets[key]
	if !ok {
		r.setMissing(fmt.Sprintf("key %q", key))
		return nil, false, ErrBadProof
	}
	if !g.Found {
		return nil, false, nil
	}
	return decodeValue(g.Value), true, nil
}

func (r *witnessReader) scan(prefix string) ([]kv, error) {
	out, _, err := r.scanPage(prefix, "", 0)
	return out, err
}

func (r *witnessReader) scanPage(prefix, after string, limit int) ([]kv, bool, error) {
	s, ok := r.scans[scanID{prefix, after, limit}]
	if !ok {
		r.setMissing(fmt.Sprintf("range %q", strings.TrimPrefix(prefix, keyState)))
		return nil, false, ErrBadProof
	}
	out := make([]kv, len(s.Keys))
	for i := range s.Keys {
		out[i] = kv{string(s.Keys[i]), decodeValue(s.Values[i])}
	}
	return out, s.More, nil
}

func (r *witnessReader) setMissing(what string) {
	if r.missing == "" {
		r.missing = what
	}
}
